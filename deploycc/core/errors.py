"""Error types that carry deploycc's exit-code contract.

Every user mistake becomes a ``UserError`` (exit 2) with one line that names the file, node or
option at fault; a gate that does not hold becomes a ``GateFailed`` (exit 1). Anything else is a
bug in deploycc and is allowed to show its traceback.
"""

from __future__ import annotations


class DeployccError(Exception):
    """Base class: an error whose message is meant for the user, on one line."""

    exit_code = 2


class UserError(DeployccError):
    """Bad input or usage: missing file, invalid model, unknown option value. Exit code 2."""

    exit_code = 2


class GateFailed(DeployccError):
    """A verification gate (numerics, mIoU, latency) did not hold. Exit code 1."""

    exit_code = 1


class Unavailable(UserError):
    """A component this machine lacks (TensorRT, a GPU, a cross compiler). Exit code 2."""


def first_line(exc: BaseException, with_type: bool = False) -> str:
    """The first line of an exception's message (or its type name when it has none), optionally
    after the type name: the ONNX checker, onnxsim, TVM and ONNX Runtime raise multi-line reports,
    and a user mistake is reported on one line."""
    lines = str(exc).strip().splitlines()
    if with_type:
        return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return lines[0] if lines else type(exc).__name__
