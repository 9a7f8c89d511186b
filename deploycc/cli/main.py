"""The ``deploycc`` command line: the registry of command modules, and the exit-code contract.

Each ``cmd_*`` module declares its own typer group (``app``); this registry imports every one and
merges it into the root command. No command module imports this one.

Exit codes: 0 ok, 1 a verification gate failed, 2 bad input or usage. A user mistake is printed
as one line (``error: ...``) on stderr, never as a traceback.
"""

from __future__ import annotations

import sys

import typer

from deploycc.cli import (cmd_build, cmd_ci, cmd_data, cmd_info, cmd_lut, cmd_models, cmd_predict, cmd_train,
                          cmd_verify)
from deploycc.cli.output import err_console
from deploycc.core.errors import DeployccError

app = typer.Typer(
    name="deploycc", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Deploy searched CNNs to CPUs, Jetson Xavier and NPUs; verify numerics, mIoU and latency.",
)

for _module in (cmd_build, cmd_ci, cmd_info, cmd_models, cmd_predict, cmd_train, cmd_verify):
    app.add_typer(_module.app)               # top-level commands (build, run, bench, ...)
for _module in (cmd_data, cmd_lut):
    app.add_typer(_module.app, name=_module.app.info.name)   # command groups (data ..., lut ...)


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, standalone_mode=False)
    except DeployccError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except (typer.Exit, SystemExit) as exc:
        return int(getattr(exc, "exit_code", getattr(exc, "code", 0)) or 0)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        ctx = getattr(exc, "ctx", None)
        where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        err_console.print(f"[red]error:[/] {exc.format_message()}{where}", highlight=False, soft_wrap=True)
        return 2
    return 0


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors (typer vendors click as ``typer._click``): bad options, missing arguments."""
    return any(cls.__name__ in ("ClickException", "UsageError") for cls in type(exc).__mro__) and hasattr(
        exc, "format_message")


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
