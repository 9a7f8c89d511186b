"""Options and argument parsing shared by every command, declared once."""

from __future__ import annotations

import typer


def json_option(help: str = "Print machine-readable JSON instead of tables.") -> bool:
    """The ``--json`` flag of a command that reports figures."""
    return typer.Option(False, "--json", help=help)


JSON = json_option()


def split_list(text: str | None) -> list[str] | None:
    """``a, b,c`` as ``["a", "b", "c"]`` (empty items dropped); None stays None."""
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]
