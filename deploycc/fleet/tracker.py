"""A TVM RPC tracker client with a bound on every wait, and device leases that say which device.

TVM's own client (``tvm.rpc.TrackerSession``) retries a refused connection for 60 s, blocks with
no limit while a request waits for a free server, and hides which server it handed out. A fleet
needs the opposite on all three counts (an unreachable tracker is one line at once; a request
gives up; every result names its device), so this module speaks the tracker's protocol through
TVM's own helpers (``tvm.rpc.base``: the magic number, ``TrackerCode``, ``sendjson``/``recvjson``)
on a socket that carries a timeout, and opens the device session with ``tvm.rpc.connect``.

A request that times out closes its socket; the tracker then skips it (its callback sees the
closed connection), so an abandoned request never swallows a device.
"""

from __future__ import annotations

import gc
import socket
import struct
from dataclasses import dataclass, field

from deploycc.core.errors import UserError, first_line

from .errors import RemoteError, RemoteTimeout, call_with_timeout


def parse_address(text: str, option: str = "--remote") -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); anything else is one line naming the option."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{option} {text!r}: give the tracker as HOST:PORT (e.g. 127.0.0.1:9190)")
    return host.strip("[]"), int(port)


@dataclass
class Lease:
    """One device's RPC session, handed out by the tracker; ``address`` names the device."""

    session: object
    address: str
    key: str
    # Libraries already uploaded and loaded in this session, by name. Uploading a loaded library
    # again would rewrite a file the server has mapped (and crash it), so each is sent once.
    modules: dict = field(default_factory=dict)

    def close(self) -> None:
        # TVM's RPC session has no close call: the connection ends when its last reference goes,
        # and only then does the server re-register as free. Objects that held it (VMs, remote
        # tensors) can sit in reference cycles, so collect them now rather than at some later time.
        self.session = None
        self.modules = {}
        gc.collect()


class Tracker:
    def __init__(self, address: str, timeout: float = 10.0):
        self.host, self.port = parse_address(address)
        self.address = f"{self.host}:{self.port}"
        self.timeout = float(timeout)

    def summary(self) -> dict:
        """The tracker's summary: ``queue_info`` {key: {free, pending}} and ``server_info``."""
        from tvm.rpc import base

        with self._connect() as sock:
            try:
                base.sendjson(sock, [base.TrackerCode.SUMMARY])
                reply = base.recvjson(sock)
            except OSError as exc:
                raise RemoteError(
                    f"RPC tracker {self.address} did not answer a summary request ({first_line(exc, with_type=True)})"
                ) from None
        if reply[0] != base.TrackerCode.SUCCESS:
            raise RemoteError(f"RPC tracker {self.address} refused a summary request ({reply})")
        return reply[1]

    def devices(self, key: str) -> tuple[int, int]:
        """(registered, free) servers with ``key``."""
        info = self.summary()
        registered = sum(1 for s in info.get("server_info", []) if s.get("key") == f"server:{key}")
        free = int(info.get("queue_info", {}).get(key, {}).get("free", 0))
        return registered, free

    def require(self, key: str) -> int:
        """The number of free devices with ``key``; none registered at all is one line (exit 2)."""
        info = self.summary()
        registered = sum(1 for s in info.get("server_info", []) if s.get("key") == f"server:{key}")
        if not registered:
            keys = sorted({s.get("key", "").partition(":")[2] for s in info.get("server_info", [])} - {""})
            there = f"keys registered there: {', '.join(keys)}" if keys else "no device is registered there"
            raise RemoteError(
                f"--key {key}: no device with this key is registered at RPC tracker {self.address} ({there})"
            )
        return int(info.get("queue_info", {}).get(key, {}).get("free", 0))

    def lease(self, key: str, timeout: float | None = None, session_timeout: float = 0) -> Lease:
        """A session on a free device with ``key``, waiting at most ``timeout`` seconds for one.

        ``session_timeout`` (seconds, 0 = none) is enforced by the server itself: it kills the
        session when it lasts longer, which frees a device held by a client that went away.
        """
        from tvm import rpc
        from tvm.rpc import base

        wait = self.timeout if timeout is None else float(timeout)
        with self._connect() as sock:
            sock.settimeout(wait)
            try:
                base.sendjson(sock, [base.TrackerCode.REQUEST, key, "", 1])
                reply = base.recvjson(sock)
            except TimeoutError:
                raise RemoteTimeout(
                    f"no device with key {key!r} became free at RPC tracker {self.address} within {wait:g} s"
                ) from None
            except OSError as exc:
                raise RemoteError(
                    f"RPC tracker {self.address} dropped a device request ({first_line(exc, with_type=True)})"
                ) from None
        if reply[0] != base.TrackerCode.SUCCESS:
            raise RemoteError(f"RPC tracker {self.address} refused a device request for key {key!r} ({reply})")
        url, port, matchkey = reply[1]
        address = f"{url}:{port}"
        try:
            session = call_with_timeout(
                lambda: rpc.connect(url, port, matchkey, session_timeout),
                wait,
                f"connecting to device {address} (key {key})",
            )
        except RemoteTimeout:
            raise
        except Exception as exc:  # TVM raises its own error types for a refused or reset connection
            raise RemoteError(
                f"device {address} (key {key}) refused the session ({first_line(exc, with_type=True)})"
            ) from None
        return Lease(session, address, key)

    def _connect(self) -> socket.socket:
        from tvm.rpc import base

        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise RemoteError(
                f"--remote {self.address}: no RPC tracker answers there ({exc.strerror or exc})"
            ) from None
        try:
            sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
            magic = struct.unpack("<i", base.recvall(sock, 4))[0]
        except OSError as exc:
            sock.close()
            raise RemoteError(
                f"--remote {self.address}: the service there did not complete the RPC tracker "
                f"handshake ({first_line(exc, with_type=True)})"
            ) from None
        if magic != base.RPC_TRACKER_MAGIC:
            sock.close()
            raise RemoteError(f"--remote {self.address}: the service there is not a TVM RPC tracker")
        return sock


def remote_options(remote: str | None, key: str | None) -> tuple[str, str] | None:
    """(remote, key) when the command is to run on the fleet, None when it runs here."""
    if remote is None and key is None:
        return None
    if not remote or not key:
        raise UserError(
            "--remote HOST:PORT and --key KEY go together (the tracker, and the device key "
            "the rpc_servers registered with)"
        )
    parse_address(remote)
    return remote, key
