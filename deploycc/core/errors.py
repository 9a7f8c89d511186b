"""Error types that carry deploycc's exit-code contract.

Every user mistake becomes a ``UserError`` (exit 2) with one line that names the file, node or
option at fault; a gate that does not hold becomes a ``GateFailed`` (exit 1); a check that could
not run here (and was not waived) becomes ``Unverified`` (exit 3). Anything else is a bug in
deploycc: the command line prints its one-line cause and the file its traceback was written to,
and exits 4 (``deploycc.cli.main``).
"""

from __future__ import annotations

from typing import Any


class DeployccError(Exception):
    """Base class: an error whose message is meant for the user, on one line."""

    exit_code = 2


class UserError(DeployccError):
    """Bad input or usage: missing file, invalid model, unknown option value. Exit code 2."""

    exit_code = 2


class GateFailed(DeployccError):
    """A verification gate (numerics, mIoU, latency) did not hold. Exit code 1."""

    exit_code = 1
    # Set by the build (deploycc.pipeline) when it fails a gate: its result, for the report. Declared,
    # not assigned, so an instance without it still has no such attribute (readers use getattr).
    result: Any


class Unverified(DeployccError):
    """A check did not run (the artifact runs only on a device, a gate's tool is missing here) and
    was not waived: nothing failed, but nothing vouches for the result either. Exit code 3."""

    exit_code = 3


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
