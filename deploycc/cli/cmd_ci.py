"""``deploycc ci [CONFIG]``: build and verify every (model, target) pair of a project file.

Writes ``junit.xml``, ``report.json`` and ``report.html`` (with plots) into the project's output
folder (or ``--output``), prints a table of the gates and the project file's waivers, and exits
0 when every gate passed or is waived, 1 when a gate failed (naming the pair and the gate with its
figure), 3 when nothing failed but a gate did not run here and is not waived ("unverified": the
line says what would run it), 2 on a bad project file.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from deploycc.cli.options import json_option, overwrite_option
from deploycc.cli.output import emit, err_console, table
from deploycc.core.errors import GateFailed, Unverified

JSON = json_option("Print the report as JSON instead of tables.")

app = typer.Typer()  # merged into the root command by deploycc.cli.main


@app.command("ci")
def ci_cmd(
    config: Path = typer.Argument(Path("deploycc.toml"), help="project file (default: ./deploycc.toml)"),
    output: Path | None = typer.Option(None, "--output", "-o", help="report folder (default: the project's output)"),
    only: list[str] | None = typer.Option(None, "--only", help="check only this pair (MODEL@TARGET); repeatable"),
    no_cache: bool = typer.Option(False, "--no-cache", help="rebuild every pair (the cache is refreshed)"),
    overwrite: bool = overwrite_option("files in the report folder"),
    as_json: bool = JSON,
):
    """Build, verify and gate every (model, target) pair of a project file; write JUnit/JSON/HTML."""
    from deploycc.ci import failure_line, load_config, run_ci, write_reports
    from deploycc.ci.reports import REPORT_NAMES
    from deploycc.ci.runner import unverified_line
    from deploycc.core.outputs import check_output, only_names

    cfg = load_config(config)
    for note in cfg.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    folder = check_output(output or cfg.output, [config], overwrite, folder=True, ours=only_names(REPORT_NAMES))
    report = run_ci(cfg, use_cache=not no_cache, only=only, progress=None if as_json else _progress)
    files = write_reports(report, folder)
    report["files"] = {k: str(v) for k, v in files.items()}
    emit(report, as_json, _render)
    if report["outcome"] == "failed":
        raise GateFailed(failure_line(report))
    if report["outcome"] == "unverified":
        raise Unverified(unverified_line(report))


def _progress(pair: str, step: str) -> None:
    err_console.print(f"  {pair}: {step} ...", highlight=False)


def _figure(g: dict, x) -> str:
    """A gate's value or limit as a person reads it: mIoU in percent, its drop in points."""
    if x is None:
        return ""
    if g["gate"] in ("min-miou", "max-miou-drop"):
        return f"{100 * x:.2f}" + (" %" if g["gate"] == "min-miou" else " pts")
    return f"{x:.4g}" + (f" {g['unit']}" if g.get("unit") in ("ms", "%") else "")


def _render(console, d: dict) -> None:
    rows = []
    for p in d["pairs"]:
        for g in p["gates"]:
            color = {"passed": "green", "failed": "red", "not_run": "yellow"}[g["status"]]
            value, limit = _figure(g, g["value"]), _figure(g, g["limit"])
            message = g["message"] + (f" (needs {g.get('needs')})" if g["status"] == "not_run" else "")
            detail = message if len(message) <= 90 else message[:87] + "..."
            status = f"[{color}]{g['status'].replace('_', ' ')}[/]" + (" (waived)" if g.get("waived") else "")
            rows.append([p["pair"], g["gate"], status, value, limit, escape(detail)])
    console.print(table(f"deploycc ci: {d['project']}", ["pair", "gate", "status", "value", "limit", "detail"], rows))
    for w in d.get("waivers", []):
        console.print(
            f"waived in the project file: {escape(w['pair'])} gate {w['gate']} "
            f"({str(w['covers']).replace('_', ' ')}): {escape(w['reason'])}",
            highlight=False,
        )
    s = d["summary"]
    console.print("full messages: report.json / report.html")
    console.print(
        f"{d['outcome']}: {s['pairs']} pairs, {s['gates']} gates: {s['passed']} passed, {s['failed']} failed, "
        f"{s['not_run']} not run, {s['waived']} waived; reports: {d['files']['junit']}, "
        f"{d['files']['html']}, {d['files']['json']}"
    )
