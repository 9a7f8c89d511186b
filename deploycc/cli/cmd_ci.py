"""``deploycc ci [CONFIG]``: build and verify every (model, target) pair of a project file.

Writes ``junit.xml``, ``report.json`` and ``report.html`` (with plots) into the project's output
folder (or ``--output``), prints a table of the gates, and exits 1 when any gate fails or a pair
cannot be checked, naming the pair and the gate with its figure; 2 on a bad project file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from deploycc.cli.options import json_option
from deploycc.cli.output import emit, err_console, table
from deploycc.core.errors import GateFailed

JSON = json_option("Print the report as JSON instead of tables.")

app = typer.Typer()   # merged into the root command by deploycc.cli.main


@app.command("ci")
def ci_cmd(
    config: Path = typer.Argument(Path("deploycc.toml"), help="project file (default: ./deploycc.toml)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="report folder (default: the project's output)"),
    only: Optional[list[str]] = typer.Option(None, "--only", help="check only this pair (MODEL@TARGET); repeatable"),
    no_cache: bool = typer.Option(False, "--no-cache", help="rebuild every pair (the cache is refreshed)"),
    as_json: bool = JSON,
):
    """Build, verify and gate every (model, target) pair of a project file; write JUnit/JSON/HTML."""
    from deploycc.ci import failure_line, load_config, run_ci, write_reports
    cfg = load_config(config)
    report = run_ci(cfg, use_cache=not no_cache, only=only, progress=None if as_json else _progress)
    files = write_reports(report, output or cfg.output)
    report["files"] = {k: str(v) for k, v in files.items()}
    emit(report, as_json, _render)
    if not report["ok"]:
        raise GateFailed(failure_line(report))


def _progress(pair: str, step: str) -> None:
    err_console.print(f"  {pair}: {step} ...", highlight=False)


def _render(console, d: dict) -> None:
    rows = []
    for p in d["pairs"]:
        for g in p["gates"]:
            color = {"passed": "green", "failed": "red", "error": "yellow", "skipped": "dim"}[g["status"]]
            value = "" if g["value"] is None else f"{g['value']:.4g}"
            limit = "" if g["limit"] is None else f"{g['limit']:.4g}"
            detail = g["message"] if len(g["message"]) <= 90 else g["message"][:87] + "..."
            rows.append([p["pair"], g["gate"], f"[{color}]{g['status']}[/]", value, limit, escape(detail)])
    console.print(table(f"deploycc ci: {d['project']}", ["pair", "gate", "status", "value", "limit", "detail"], rows))
    s = d["summary"]
    console.print("full messages: report.json / report.html")
    console.print(f"{s['pairs']} pairs, {s['gates']} gates: {s['passed']} passed, {s['failed']} failed, "
                  f"{s['error']} errors, {s['skipped']} skipped; reports: {d['files']['junit']}, "
                  f"{d['files']['html']}, {d['files']['json']}")
