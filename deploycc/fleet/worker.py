"""A device lease held by a child process, every exchange with it bounded (see ``device.py`` for why).

Children are forked from a ``forkserver`` that has imported TVM once: a lease starts in a
fraction of a second, and no child inherits the threads or locks of the (multi-threaded) parent.
A child that does not answer within the bound of a call is killed (SIGKILL); its sockets close
with it, the device's server ends the session, and the caller gets ``RemoteTimeout``.
"""

from __future__ import annotations

import multiprocessing as mp

from deploycc.core.errors import Unavailable, UserError

from .errors import RemoteError, RemoteTimeout

_CTX = None
START_MARGIN = 60.0  # seconds for a child to start (the fork server imports TVM on first use)
_ERRORS = {"Unavailable": Unavailable, "UserError": UserError, "RemoteTimeout": RemoteTimeout}


def _context():
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["deploycc.fleet.device"])
    return _CTX


class DeviceProcess:
    """One leased device: ``address`` names it; ``call`` sends one request and waits a bounded time."""

    def __init__(self, tracker_address: str, key: str, lease_timeout: float, session_timeout: float = 0):
        from .device import serve

        ctx = _context()
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=serve, args=(child,), daemon=True, name=f"deploycc-device-{key}")
        self._proc.start()
        child.close()
        self.key, self.address = key, f"(a {key} device from {tracker_address})"
        self.address = self.call(
            ("lease", tracker_address, key, lease_timeout, session_timeout),
            lease_timeout + START_MARGIN,
            "leasing a device",
        )

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def call(self, message: tuple, timeout: float, what: str):
        if not self.alive:
            raise RemoteError(f"{what} on device {self.address}: its session was given up earlier")
        try:
            self._conn.send(message)
            ready = self._conn.poll(timeout)
        except (OSError, EOFError):
            self.sever()
            raise RemoteError(f"{what} on device {self.address}: the session ended") from None
        if not ready:
            self.sever()
            raise RemoteTimeout(f"{what} on device {self.address} did not finish within {timeout:g} s")
        try:
            status, payload = self._conn.recv()
        except (OSError, EOFError):
            self.sever()
            raise RemoteError(f"{what} on device {self.address}: the session ended") from None
        if status == "ok":
            return payload
        kind, text = payload
        if kind in _ERRORS:
            raise _ERRORS[kind](text)
        raise RemoteError(f"{what} on device {self.address} failed ({kind}: {text})" if kind != "RemoteError" else text)

    def ping(self, timeout: float = 5.0) -> bool:
        try:
            return bool(self.call(("ping",), timeout, "a ping"))
        except (RemoteError, UserError):
            return False

    def sever(self) -> None:
        """Kill the child at once (its sockets close with it); for a device that stopped answering."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._close_pipe()

    def close(self) -> None:
        """End the session politely, or kill the child if it does not answer within a few seconds."""
        if self.alive:
            try:
                self._conn.send(("close",))
                if self._conn.poll(5):
                    self._conn.recv()
            except (OSError, EOFError):
                pass
            self._proc.join(5)
        self.sever()

    def _close_pipe(self) -> None:
        try:
            self._conn.close()
        except OSError:
            pass
