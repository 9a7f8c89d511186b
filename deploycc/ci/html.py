"""The HTML summary of ``deploycc ci``: a table of pairs and gates, and three plots (matplotlib).

Plots: mIoU per pair (bars, the min-mIoU limit as a line), latency per pair (median bars with
p90 whiskers, the LUT prediction as markers, the max-latency limit as a line), and predicted
against measured latency (y = x line). Each PNG is written beside the page and embedded in it
(base64), so the page is one self-contained file a CI system can show as an artifact.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

STATUS_COLOR = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#9a6700", "skipped": "#6e7781"}


def write_html(report: dict, folder: Path, path: Path) -> dict:
    plots = _plots(report, folder)
    parts = [_head(report), _summary(report)]
    for title, png in plots.items():
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    parts.append(_pairs_table(report))
    parts.append("</body></html>\n")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)
    return {f"plot_{p.stem}": p for p in plots.values()}


def _head(report: dict) -> str:
    title = html.escape(f"deploycc ci: {report['project']}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>{title}</h1><p>config {html.escape(report['config'])}, {report['seconds']:.1f} s, "
            f"machine {html.escape(str(report['machine'].get('cpu_model', report['machine'].get('machine'))))}</p>")


def _badge(status: str) -> str:
    return f"<b style='color:{STATUS_COLOR.get(status, '#000')}'>{html.escape(status)}</b>"


def _summary(report: dict) -> str:
    s = report["summary"]
    verdict = _badge("passed" if report["ok"] else "failed")
    return (f"<p>{verdict}: {s['pairs']} pairs, {s['gates']} gates: {s['passed']} passed, {s['failed']} failed, "
            f"{s['error']} errors, {s['skipped']} skipped.</p>")


def _pairs_table(report: dict) -> str:
    rows = ["<h2>Gates</h2><table><tr><th>pair</th><th>gate</th><th>status</th><th>value</th><th>limit</th>"
            "<th>detail</th></tr>"]
    for pair in report["pairs"]:
        for g in pair["gates"]:
            value = "" if g["value"] is None else f"{g['value']:.4g}"
            limit = "" if g["limit"] is None else f"{g['limit']:.4g}"
            rows.append(f"<tr><td>{html.escape(pair['pair'])}</td><td>{html.escape(g['gate'])}</td>"
                        f"<td>{_badge(g['status'])}</td><td>{value}</td><td>{limit}</td>"
                        f"<td>{html.escape(g['message'])}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _plots(report: dict, folder: Path) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = report["pairs"]
    out = {}
    acc = [(p["pair"], p["accuracy"]["miou"], _limit(p, "min-miou")) for p in pairs
           if (p.get("accuracy") or {}).get("miou") is not None]
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
        ax.scatter([i for i, _ in pred], [v for _, v in pred], marker="D", color="#dd8452", zorder=3, label="LUT prediction")
    for i, p in enumerate(pairs):
        limit = _limit(p, "max-latency")
        if limit is not None:
            ax.hlines(limit, i - 0.4, i + 0.4, colors="#cf222e", label="max latency" if i == 0 else None)
    ax.set_xticks(list(x), [p["pair"] for p in pairs], rotation=20)
    if max(med) > 20 * min(med):   # backends that differ by orders of magnitude stay readable
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
