"""The per-pair pages of ``deploycc ci``: each pair's build report and verify report, linked from
``report.html``.

A build report is written when the pair is built and kept in the cache beside the entries
(``<cache>/reports/<key>/build.html``, key = the pair's cache key), so a pair served from the
cache still links the report of the build that made its artifact; the verify report is written
on every run (accuracy is measured on every run). A pair's record names that folder
(``report_dir``); ``copy_pair_reports`` copies both into
``<output>/pairs/<model>@<target>/`` beside ``report.html`` and records the relative links.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deploycc.core.errors import GateFailed

KINDS = ("build", "verify")


def report_dir(cache: Path, key: str) -> Path:
    return Path(cache) / "reports" / key


def build_with_report(model_source: str, target_name: str, out: Path, options, page_path: Path) -> None:
    """``deploycc build`` into ``out``, writing its report at ``page_path`` (also when numerics fail)."""
    from deploycc.pipeline.pipeline import build
    from deploycc.report import build as build_page
    from deploycc.report import write_report

    try:
        result = build(model_source, target_name, out, options)
    except GateFailed as failed:
        if getattr(failed, "result", None) is not None:
            write_report(build_page.page(failed.result.report_data(model_source, written=False)), page_path)
        raise
    write_report(build_page.page(result.report_data(model_source, written=True)), page_path)


def write_verify_page(page_path: Path, record: dict, data: dict, pictures: dict | None) -> None:
    from deploycc.report import verify, write_report

    write_report(verify.page({**data, "gates": record["gates"]}, pictures), page_path)


def copy_pair_reports(report: dict, folder: Path) -> None:
    """Copy each pair's pages beside ``report.html``; ``pair["reports"]`` gets their relative links."""
    for pair in report["pairs"]:
        if not pair.get("report_dir"):
            continue
        links = {}
        for kind in KINDS:
            source = Path(pair["report_dir"]) / f"{kind}.html"
            if source.is_file():
                dest = folder / "pairs" / pair["pair"] / f"{kind}.html"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, dest)
                links[kind] = dest.relative_to(folder).as_posix()
        pair["reports"] = links
