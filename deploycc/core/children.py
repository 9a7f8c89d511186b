"""Child processes that never outlive the deploycc command that started them.

:func:`run_child` starts a long-running child (the emulated device's server under QEMU) in its own
process group, asks the kernel to send it SIGTERM if deploycc dies (``PR_SET_PDEATHSIG``, Linux;
it covers ``kill -9`` too), and stops the whole group (SIGTERM, then SIGKILL after a grace period)
when deploycc is interrupted: SIGINT, or SIGTERM, which :func:`terminate_as_interrupt` turns into
the same ``KeyboardInterrupt`` so that every ``finally`` (staging folders, leases) runs.
Hand-written: ``subprocess`` kills only the direct child, not what the child started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess

GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1


_RECEIVED: list[int] = []  # the interrupting signals this command received


def terminate_as_interrupt():
    """SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does, and both are recorded
    (:func:`raise_if_interrupted`); returns the handlers it replaced (for :func:`restore_terminate`),
    or None off the main thread (then nothing changes)."""

    def interrupt(signum, frame):
        _RECEIVED.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread (a test runner's worker): leave the defaults
        return None


def restore_terminate(previous) -> None:
    if previous is not None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _RECEIVED.clear()


def interrupted() -> bool:
    return bool(_RECEIVED)


def raise_if_interrupted() -> None:
    """KeyboardInterrupt again if the command was interrupted: for code that runs Python callbacks
    from native code (TVM's tuner), which turns the interrupt raised in a callback into an error of
    its own, or a failed candidate, and goes on."""
    if _RECEIVED:
        raise KeyboardInterrupt(f"signal {_RECEIVED[-1]}")


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (where the kernel offers it)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (AttributeError, OSError):
        pass


def stop_group(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """Stop ``proc`` and everything in its process group: SIGTERM, then SIGKILL after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the group leader gone, a member that ignored SIGTERM may remain
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(argv: list[str], env: dict | None = None) -> int:
    """Run ``argv`` until it exits (its exit code), or until this process is interrupted (then its
    whole process group is stopped and the interrupt raised again)."""
    proc = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    try:
        return proc.wait()
    except BaseException:
        stop_group(proc)
        raise
