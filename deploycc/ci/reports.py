"""The reports of ``deploycc ci``: JUnit XML (what CI systems display), JSON, and an HTML summary.

JUnit: one ``<testsuite>`` per (model, target) pair, one ``<testcase>`` per gate (build,
numerics, min-miou, max-miou-drop, max-latency-error, max-latency): a failed gate carries a
``<failure>``, a gate that did not run a ``<skipped>`` whose message is the reason and what would
run it, and a waived gate a ``<skipped>`` that says "waived" with the project file's reason (so a
CI system shows it, but it does not count as a failure); the pair's figures and its waivers go
into ``<properties>``. Written with ``xml.etree.ElementTree`` (escaping and well-formedness for
free). Every file is written to a temporary name beside it and renamed into place.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from deploycc.core.outputs import write_output_bytes

from .html import write_html
from .pages import copy_pair_reports

# every name deploycc ci writes into its report folder (the HTML page's plots included)
REPORT_NAMES = ("junit.xml", "report.json", "report.html", "miou.png", "latency.png", "lut.png", "pairs")


def write_reports(report: dict, folder: Path) -> dict:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"junit": folder / "junit.xml", "json": folder / "report.json", "html": folder / "report.html"}
    _atomic(files["junit"], junit_xml(report))
    copy_pair_reports(report, folder)
    files.update(write_html(report, folder, files["html"]))
    report = {**report, "files": {k: str(v) for k, v in files.items()}}
    _atomic(files["json"], json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
    return files


def _atomic(path: Path, text: str) -> None:
    write_output_bytes(path, text.encode("utf-8"))


def junit_xml(report: dict) -> str:
    s = report["summary"]
    gates_all = [g for p in report["pairs"] for g in p["gates"]]
    root = ET.Element(
        "testsuites",
        name=f"deploycc ci: {report['project']} ({report.get('outcome', '')})",
        tests=str(s["gates"]),
        failures=str(sum(map(_is_failure, gates_all))),
        errors="0",
        skipped=str(sum(map(_is_skipped, gates_all))),
        time=f"{report['seconds']:.3f}",
    )
    for pair in report["pairs"]:
        gates = pair["gates"]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=pair["pair"],
            tests=str(len(gates)),
            failures=str(sum(map(_is_failure, gates))),
            errors="0",
            skipped=str(sum(map(_is_skipped, gates))),
            time=f"{pair.get('seconds', 0):.3f}",
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="status", value=pair["status"])
        for name, value in _properties(pair):
            ET.SubElement(props, "property", name=name, value=str(value))
        for g in gates:
            case = ET.SubElement(
                suite, "testcase", classname=f"deploycc.{pair['model']}.{pair['target']}", name=g["gate"], time="0"
            )
            text = _gate_text(g)
            if _is_failure(g):
                element = ET.SubElement(case, "failure", message=text[:500], type=f"deploycc.gate.{g['gate']}")
                element.text = text
            elif _is_skipped(g):
                ET.SubElement(case, "skipped", message=text[:500]).text = text
            else:
                ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _is_failure(g: dict) -> bool:
    return g["status"] == "failed" and not g.get("waived")


def _is_skipped(g: dict) -> bool:
    return g["status"] != "passed" and not _is_failure(g)


def _properties(pair: dict):
    yield "source", pair.get("source", "")
    for g in pair["gates"]:
        if g.get("waived"):
            yield f"waiver_{g['gate']}", g["waived"]
    yield "cache", pair.get("cache", "")
    if pair.get("artifact"):
        yield "artifact", pair["artifact"]
    acc = pair.get("accuracy") or {}
    for k in ("miou", "reference_miou", "miou_drop", "pixel_accuracy", "images"):
        if acc.get(k) is not None:
            yield k, acc[k]
    lat = pair.get("latency") or {}
    for k in ("median_ms", "p90_ms", "p99_ms", "runs", "predicted_ms", "error_pct"):
        if lat.get(k) is not None:
            yield f"latency_{k}" if not k.startswith(("predicted", "error")) else f"lut_{k}", lat[k]


def _gate_text(g: dict) -> str:
    figure = "" if g["value"] is None else f" value={g['value']:.6g}"
    limit = "" if g["limit"] is None else f" limit={g['limit']:.6g}"
    status = g["status"].replace("_", " ")
    text = f"{g['gate']} {status}{figure}{limit}: {g['message']}"
    if g["status"] == "not_run":
        text += f" (needs {g.get('needs')})"
    if g.get("waived"):
        text = f"waived in the project file ({g['waived']}); " + text
    return text.strip()
