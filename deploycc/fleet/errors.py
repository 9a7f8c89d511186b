"""Errors of the remote path, and the helper that bounds a call that may never return.

A device that drops closes its socket and TVM raises at once; a device that hangs (stopped,
unplugged mid-transfer, a kernel stuck in a driver) never answers, and TVM's client has no
timeout of its own. Calls that touch TVM's RPC objects run in a child process per lease
(``worker.py``, which kills a child that overruns its bound); :func:`call_with_timeout` bounds the
calls made on this side (connecting, a fan-out job) by running them in a daemon thread and giving
up after the bound: the caller gets :class:`RemoteTimeout`.
"""

from __future__ import annotations

import threading

from deploycc.core.errors import UserError


class RemoteError(UserError):
    """The tracker or a device failed us (unreachable, no device with the key, dropped). Exit 2."""


class RemoteTimeout(RemoteError):
    """A remote call did not return within its bound."""


def call_with_timeout(fn, seconds: float, what: str):
    """``fn()``, or :class:`RemoteTimeout` naming ``what`` when it takes longer than ``seconds``."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"deploycc-remote: {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise RemoteTimeout(f"{what} did not finish within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
