"""Output for people (rich tables on stdout, progress on stderr) and for machines (``--json``)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleDimensions, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.status import Status

# Wide enough for any row: a table is only as wide as its content, so in a pipe or a CI log every
# row stays on one line and no name is split (rich would otherwise assume 80 columns there).
PIPE_WIDTH = 10_000


_RICH_SIZE: property = Console.__dict__["size"]  # rich's own size property, getter and setter


class _Console(Console):
    """A rich console that wraps at the terminal's width on a terminal, and nowhere otherwise."""

    @property
    def size(self) -> ConsoleDimensions:
        size = _RICH_SIZE.__get__(self)
        return size if self.is_terminal else ConsoleDimensions(PIPE_WIDTH, size.height)

    @size.setter
    def size(self, new_size) -> None:
        _RICH_SIZE.__set__(self, new_size)


console = _Console()
err_console = _Console(stderr=True)


def emit(data: dict, as_json: bool, render) -> None:
    """Print ``data`` as JSON, or call ``render(console, data)`` for a person."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        render(console, data)


def print_warnings(lines: list[str]) -> None:
    """Warnings on stderr, one line each, whether the command prints tables or --json."""
    for line in lines:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


def table(title: str, columns: list[str], rows: list[list]) -> Group:
    """A titled table. The title is a line of its own: as a rich table title it would wrap at the
    table's width, splitting a long title over lines even in a pipe."""
    t = Table()
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[str(x) for x in r])
    return Group(Text.from_markup(title, style="table.title"), t)


class StageReporter:
    """Rich status lines for pipeline stages (stderr, so ``--json`` stdout stays clean)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._status: Status | None = None

    def start(self, name: str) -> None:
        if not self.quiet:
            self._status = err_console.status(f"[bold]{name}[/] ...")
            self._status.start()

    def stop(self, name: str, seconds: float, ok: bool) -> None:
        if self._status:
            self._status.stop()
            self._status = None
        # A failing stage prints nothing here: the error line that follows says what went wrong.
        if ok and not self.quiet:
            err_console.print(f"  {name:<10} [green]done[/] in {seconds:.2f} s")


class progress_bar:
    """A rich progress bar on stderr (none with --json) labelled ``label``; yields an ``advance(n)``
    callback, or None when quiet."""

    def __init__(self, label: str, total: int, quiet: bool):
        self.label, self.total, self.quiet = label, total, quiet
        self._bar: Progress | None = None

    def __enter__(self):
        if self.quiet:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        bar = self._bar = Progress(
            f"[bold]{self.label}[/]",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        )
        bar.start()
        task = bar.add_task(self.label, total=self.total)
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc):
        if self._bar:
            self._bar.stop()
