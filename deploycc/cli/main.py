"""The ``deploycc`` command line: the registry of command modules, and the exit-code contract.

Each ``cmd_*`` module declares its own typer group (``app``); this registry imports every one and
merges it into the root command. No command module imports this one.

Exit codes (``deploycc.core.verdict``; README "Exit codes"):

* 0: everything asked for was checked and held (or was waived in the project file);
* 1: a verification gate failed;
* 2: bad input or usage (one line, ``error: ...``, naming the file, node or option);
* 3: unverified: nothing failed, but a check did not run here (the line says what would run it);
* 4: an internal error (a bug in deploycc or a library it drives): one line with its cause and the
  file the full traceback was written to, never a bare traceback on the terminal.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Protocol, TypeGuard

import typer

from deploycc.cli import (
    cmd_build,
    cmd_ci,
    cmd_data,
    cmd_device,
    cmd_info,
    cmd_lut,
    cmd_models,
    cmd_predict,
    cmd_train,
    cmd_verify,
)
from deploycc.cli.output import err_console
from deploycc.core.children import restore_terminate, terminate_as_interrupt
from deploycc.core.errors import DeployccError, first_line
from deploycc.core.outputs import is_nul_error, is_user_os_error, os_error_line
from deploycc.core.verdict import EXIT_INTERNAL, EXIT_UNVERIFIED

app = typer.Typer(
    name="deploycc",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Deploy searched CNNs to CPUs, Jetson Xavier and NPUs; verify numerics, mIoU and latency.",
)

# The toolchains whose versions decide what an artifact holds (each backend records its own in the
# manifest); read from the installed distributions' metadata, so --version imports none of them.
TOOLCHAINS = (
    "onnx",
    "onnx-ir",
    "onnxsim",
    "onnxruntime",
    "onnxconverter-common",
    "apache-tvm",
    "apache-tvm-ffi",
    "tensorrt",
    "torch",
)


def versions() -> dict[str, str | None]:
    """deploycc's version and each toolchain's (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("deploycc", *TOOLCHAINS):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _print_version(value: bool) -> None:
    if not value:
        return
    found = versions()
    lines = [f"deploycc {found.pop('deploycc') or '(not installed: run from a source tree)'}"]
    lines.append(f"  python {sys.version.split()[0]}")
    lines += [f"  {name} {v or 'not installed'}" for name, v in found.items()]
    typer.echo("\n".join(lines))
    raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print deploycc's version and each toolchain's, and exit.",
    ),
) -> None:
    pass


for _module in (cmd_build, cmd_ci, cmd_info, cmd_models, cmd_predict, cmd_train, cmd_verify):
    app.add_typer(_module.app)  # top-level commands (build, run, bench, ...)
for _module in (cmd_data, cmd_device, cmd_lut):
    app.add_typer(_module.app, name=_module.app.info.name)  # command groups (data ..., lut ...)


EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl-C


def main(argv: list[str] | None = None) -> int:
    previous = terminate_as_interrupt()  # SIGTERM cleans up as Ctrl-C does: staging removed, children stopped
    try:
        return _main(argv)
    finally:
        restore_terminate(previous)


def _main(argv: list[str] | None) -> int:
    try:
        code = app(args=argv, standalone_mode=False)
    except DeployccError as exc:
        # exit 3 is no error: the message says what was not checked and what would check it
        prefix = "[yellow]unverified:[/]" if exc.exit_code == EXIT_UNVERIFIED else "[red]error:[/]"
        err_console.print(f"{prefix} {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except (typer.Exit, SystemExit) as exc:
        return int(getattr(exc, "exit_code", getattr(exc, "code", 0)) or 0)
    except typer.Abort:
        err_console.print("aborted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if is_user_os_error(exc) or is_nul_error(exc):  # the user's paths or the machine, not a bug
            line = os_error_line(exc) if isinstance(exc, OSError) else "a path holds a NUL byte, which no file takes"
            err_console.print(f"[red]error:[/] {line}", highlight=False, soft_wrap=True)
            return 2
        if not _is_usage_error(exc):
            return _internal_error(exc)
        ctx = getattr(exc, "ctx", None)
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        err_console.print(f"[red]error:[/] {exc.format_message()}{where}", highlight=False, soft_wrap=True)
        return 2
    return _returned(code)


def _returned(code) -> int:
    """The exit code of a command that returned: typer (not in standalone mode) hands back a
    ``typer.Exit(n)`` and an interrupt (Ctrl-C, or SIGTERM: ``terminate_as_interrupt``) as the
    return value, 130 for the interrupt; a command itself returns None."""
    if isinstance(code, int) and code:
        if code == EXIT_INTERRUPTED:
            err_console.print("interrupted")
        return code
    return 0


class _UsageError(Protocol):
    def format_message(self) -> str: ...


def _is_usage_error(exc: Exception) -> TypeGuard[_UsageError]:
    """Click's usage errors (typer vendors click as ``typer._click``): bad options, missing arguments."""
    return any(cls.__name__ in ("ClickException", "UsageError") for cls in type(exc).__mro__) and hasattr(
        exc, "format_message"
    )


def _internal_error(exc: Exception) -> int:
    """Exit 4: the cause on one line, the traceback in a file (a user should not have to read it,
    a bug report should carry it)."""
    path = _write_traceback(exc)
    where = f"traceback written to {path}" if path else "the traceback could not be written"
    err_console.print(
        f"[red]internal error:[/] {first_line(exc, with_type=True)} ({where}; please report it with that file)",
        highlight=False,
        soft_wrap=True,
    )
    return EXIT_INTERNAL


def _write_traceback(exc: Exception) -> Path | None:
    text = "".join(traceback.format_exception(exc))
    name = f"traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    root = Path(os.environ.get("DEPLOYCC_CACHE", Path.home() / ".cache" / "deploycc"))
    for folder in (root / "tracebacks", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(f"deploycc {' '.join(sys.argv[1:])}\n{text}", encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def entry() -> None:
    code = main()
    if code == EXIT_INTERRUPTED and threading.active_count() > 1:
        _exit_without_finalizing(code)
    sys.exit(code)


def _exit_without_finalizing(code: int) -> None:
    """End an interrupted run whose other threads are still alive without finalizing the interpreter.

    Finalization ends a daemon thread that is inside native code (a TVM build or RPC call of a fleet
    worker, a TVM helper thread) by unwinding it through C++ frames that forbid it, and the process
    aborts ("terminate called without an active exception", exit -6) after it printed "interrupted".
    The cleanup has run by then (staging removed, children stopped); the atexit handlers run here.
    """
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    entry()
