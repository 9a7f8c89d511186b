"""The HTML summary of ``deploycc ci``: the pairs (linking each pair's build and verify reports),
three plots (matplotlib) and the gates, in the style of every deploycc report.

Plots: mIoU per pair (bars, the min-mIoU limit as a line), latency per pair (median bars with
p90 whiskers, the LUT prediction as markers, the max-latency limit as a line), and predicted
against measured latency (y = x line). Each PNG is written beside the page and embedded in it
(base64), so the page is one self-contained file a CI system can show as an artifact.
"""

from __future__ import annotations

import os
from pathlib import Path

from deploycc.core.verdict import label
from deploycc.report.page import Html, Page, badge, link, png_figure, table


def write_html(report: dict, folder: Path, path: Path) -> dict:
    """The page in deploycc's report style (``deploycc.report.page``), each pair's gates linking its
    build and verify reports (``pair["reports"]``, relative to ``folder``)."""
    plots = _plots(report, folder)
    machine = report["machine"]
    s = report["summary"]
    page = Page(
        "ci",
        f"deploycc ci: {report['project']}",
        {
            "config": report["config"],
            "time": f"{report['seconds']:.1f} s",
            "machine": str(machine.get("cpu_model", machine.get("machine"))),
            "gates": f"{s['pairs']} pairs, {s['gates']} gates: {s['passed']} passed, {s['failed']} failed, "
            f"{s['not_run']} not run, {s['waived']} waived",
        },
        report.get("outcome", "passed" if report["ok"] else "failed"),
    )
    page.add("Pairs", _pairs_table(report))
    if report.get("waivers"):
        page.add(
            "Waivers",
            table(
                ["pair", "gate", "covers", "reason (project file)"],
                [
                    [
                        w["pair"],
                        w["gate"],
                        label(str(w["covers"])),
                        f"waived: {w['pair']} gate {w['gate']}: {w['reason']}",
                    ]
                    for w in report["waivers"]
                ],
            ),
        )
    for title, png in plots.items():
        page.add(title, png_figure(png.read_bytes(), title, png.stem))
    page.add("Gates", _gates_table(report))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(page.render(), encoding="utf-8")
    os.replace(tmp, path)
    return {f"plot_{p.stem}": p for p in plots.values()}


def _pairs_table(report: dict) -> Html:
    rows = []
    for pair in report["pairs"]:
        links = pair.get("reports") or {}
        pages = Html(" · ".join(link(href, kind) for kind, href in links.items())) if links else "—"
        rows.append([pair["pair"], badge(label(pair["status"])), pair.get("cache", ""), pages])
    return table(["pair", "status", "build cache", "reports"], rows)


def _gates_table(report: dict) -> Html:
    rows = []
    for pair in report["pairs"]:
        for g in pair["gates"]:
            value = "" if g["value"] is None else f"{g['value']:.4g}"
            limit = "" if g["limit"] is None else f"{g['limit']:.4g}"
            status = Html(f"{badge(label(g['status']))}{' (waived)' if g.get('waived') else ''}")
            rows.append([pair["pair"], g["gate"], status, value, limit, _detail(g)])
    return table(["pair", "gate", "status", "value", "limit", "detail"], rows)


def _detail(g: dict) -> str:
    """The gate's message; a gate not run says what would run it, a waived one the waiver's reason."""
    text = g["message"]
    if g["status"] == "not_run":
        text += f" (needs {g.get('needs')})"
    if g.get("waived"):
        text += f"; waived: {g['waived']}"
    return text


def _plots(report: dict, folder: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = report["pairs"]
    out = {}
    acc = [
        (p["pair"], p["accuracy"]["miou"], _limit(p, "min-miou"))
        for p in pairs
        if (p.get("accuracy") or {}).get("miou") is not None
    ]
    if acc:
        out["mIoU per pair"] = _bars(plt, folder / "miou.png", acc, "mIoU (%)", 100.0, "min mIoU")
    lat = [p for p in pairs if p.get("latency")]
    if lat:
        out["Latency per pair"] = _latency_bars(plt, folder / "latency.png", lat)
    lut = [p for p in lat if p["latency"].get("predicted_ms") is not None]
    if lut:
        out["Predicted vs measured latency"] = _scatter(plt, folder / "lut.png", lut)
    return out


def _limit(pair: dict, gate: str):
    return next((g["limit"] for g in pair["gates"] if g["gate"] == gate), None)


def _bars(plt, path: Path, rows, ylabel: str, scale: float, limit_label: str) -> Path:
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(rows)), 3.5))
    names = [r[0] for r in rows]
    ax.bar(names, [scale * r[1] for r in rows], color="#4c72b0")
    for i, r in enumerate(rows):
        if r[2] is not None:
            ax.hlines(scale * r[2], i - 0.4, i + 0.4, colors="#cf222e", label=limit_label if i == 0 else None)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=20)
    if any(r[2] is not None for r in rows):
        ax.legend()
    return _save(plt, fig, path)


def _latency_bars(plt, path: Path, pairs) -> Path:
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(pairs)), 3.5))
    x = range(len(pairs))
    med = [p["latency"]["median_ms"] for p in pairs]
    p90 = [max(0.0, p["latency"]["p90_ms"] - p["latency"]["median_ms"]) for p in pairs]
    ax.bar(x, med, yerr=[[0] * len(pairs), p90], color="#4c72b0", capsize=4, label="measured median (p90 whisker)")
    pred = [(i, p["latency"]["predicted_ms"]) for i, p in enumerate(pairs) if p["latency"].get("predicted_ms")]
    if pred:
        ax.scatter(
            [i for i, _ in pred], [v for _, v in pred], marker="D", color="#dd8452", zorder=3, label="LUT prediction"
        )
    for i, p in enumerate(pairs):
        limit = _limit(p, "max-latency")
        if limit is not None:
            ax.hlines(limit, i - 0.4, i + 0.4, colors="#cf222e", label="max latency" if i == 0 else None)
    ax.set_xticks(list(x), [p["pair"] for p in pairs], rotation=20)
    if max(med) > 20 * min(med):  # backends that differ by orders of magnitude stay readable
        ax.set_yscale("log")
    ax.set_ylabel("latency (ms)")
    ax.legend(fontsize="small")
    return _save(plt, fig, path)


def _scatter(plt, path: Path, pairs) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    pred = [p["latency"]["predicted_ms"] for p in pairs]
    meas = [p["latency"]["measured_ms"] for p in pairs]
    top = 1.1 * max(pred + meas)
    ax.plot([0, top], [0, top], color="#888", linestyle="--", label="y = x")
    ax.scatter(pred, meas, color="#4c72b0", zorder=3)
    for p, x, y in zip(pairs, pred, meas):
        ax.annotate(p["pair"], (x, y), fontsize="small", xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("LUT prediction (ms)")
    ax.set_ylabel("measured (ms)")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.legend()
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path
