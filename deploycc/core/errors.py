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
