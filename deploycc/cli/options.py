"""Options and argument parsing shared by every command, declared once."""

from __future__ import annotations

from typing import Any

import typer


def json_option(help: str = "Print machine-readable JSON instead of tables.") -> bool:
    """The ``--json`` flag of a command that reports figures."""
    return typer.Option(False, "--json", help=help)


JSON = json_option()


def split_list(text: str | None) -> list[str] | None:
    """``a, b,c`` as ``["a", "b", "c"]`` (empty items dropped); None stays None."""
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def report_option(what: str) -> Any:
    """The ``--report FILE.html`` option: a self-contained HTML report of ``what``."""
    return typer.Option(
        None, "--report", help=f"also write {what} as one self-contained HTML file (open it in a browser)"
    )


def overwrite_option(what: str = "the output") -> bool:
    """The ``--overwrite`` flag: replace an existing file or folder deploycc cannot prove it wrote."""
    return typer.Option(False, "--overwrite", help=f"replace {what} if it exists and deploycc did not write it")


def check_report_path(path, inputs=(), overwrite: bool = False):
    """``--report`` must name an .html file (not a folder, not an input, not an existing file
    without ``--overwrite``); checked before any work starts."""
    from deploycc.core.errors import UserError
    from deploycc.core.outputs import check_output

    if path is None:
        return None
    check_output(path, [p for p in inputs if p is not None], overwrite, option="--report", folder=False, ours=None)
    if path.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--report {path}: the report is an HTML file; give a name ending in .html")
    if path.is_dir():
        raise UserError(f"--report {path}: is a folder; give a file name ending in .html")
    return path
