"""The friendliness report: a heat map (units x positions) per target, the placement effect, the
never-on-frontier units, a cross-target comparison and the equal-MACs comparison of the full and
the reduced space, as one self-contained HTML page (plots embedded as PNG data URIs)."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np


def heatmap_png(analysis: dict) -> bytes:
    """Units x positions: roofline efficiency where the target has a roofline, else ms per GMAC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roof = analysis["peak_ops"] is not None and analysis["dram_bandwidth"] is not None
    field, label = ("efficiency", "roofline / measured") if roof else ("ms_per_gmac", "ms per GMAC")
    units, layers = analysis["units"], analysis["layers"]
    grid = np.full((len(units), layers), np.nan)
    for c in analysis["cells"]:
        if c[field] is not None:
            grid[units.index(c["unit"]), c["layer"]] = c[field]
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * layers + 2), max(3, 0.35 * len(units) + 1.5)), dpi=100)
    im = ax.imshow(grid, aspect="auto", cmap="viridis")
    for c in analysis["cells"]:
        if not c["on_frontier"]:
            ax.text(c["layer"], units.index(c["unit"]), "x", ha="center", va="center", color="white", fontsize=7)
    ax.set_yticks(range(len(units)), units, fontsize=7)
    ax.set_xticks(range(layers), [str(i) for i in range(layers)], fontsize=7)
    ax.set_xlabel("searchable layer (x: not on the latency-MACs frontier there)")
    ax.set_title(f"{analysis['target']} ({analysis['mode']}): {label}", fontsize=9)
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def html_page(analyses: list[dict], comparison: dict | None) -> str:
    e = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Hardware friendliness of units</title>",
        "<style>body{font-family:sans-serif;max-width:80em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "td{font-family:monospace}</style><h1>Hardware friendliness of units</h1>",
    ]
    for a in analyses:
        png = base64.b64encode(heatmap_png(a)).decode()
        roof = (
            f"peak {a['peak_ops'] / 1e9:g} GOP/s, DRAM {a['dram_bandwidth'] / 1e9:g} GB/s"
            if a["peak_ops"] and a["dram_bandwidth"]
            else "no roofline: the target file has no peak_ops/dram_bandwidth"
        )
        parts += [
            f"<h2>{e(a['target'])} ({e(a['mode'])}, {e(a['statistic'])}): {e(a['lut'])}</h2><p>{e(roof)}; "
            f"never on the frontier: <b>{e(', '.join(a['never_on_frontier']) or 'none')}</b></p>",
            f"<img alt='heat map' src='data:image/png;base64,{png}'>",
            "<h3>Placement effect (ms per GMAC over positions)</h3>",
            _table(
                ["unit", "positions", "min", "max", "max/min"],
                [
                    [
                        p["unit"],
                        p["positions"],
                        _f(min(p["ms_per_gmac"].values(), default=None)),
                        _f(max(p["ms_per_gmac"].values(), default=None)),
                        _f(p["spread"]),
                    ]
                    for p in a["placement"]
                ],
            ),
        ]
    if comparison:
        parts += [
            "<h2>Across targets: median roofline efficiency per unit</h2>",
            _table(
                ["unit"] + comparison["targets"],
                [[u] + [_f(v) for v in vals] for u, vals in comparison["efficiency"].items()],
            ),
        ]
        for target, rows in comparison.get("equal_macs", {}).items():
            parts += [
                f"<h2>Full vs reduced space at equal MACs: {e(target)} (predicted latency, ms)</h2>",
                _table(
                    [
                        "GMACs",
                        "full n",
                        "full median",
                        "full p10-p90",
                        "reduced n",
                        "reduced median",
                        "reduced p10-p90",
                    ],
                    [_macs_row(r) for r in rows],
                ),
            ]
    return "\n".join(parts) + "\n"


def _macs_row(r: dict) -> list:
    f, d = r["full"], r["reduced"]
    return [
        f"{r['gmacs'][0]:.2f}-{r['gmacs'][1]:.2f}",
        f["n"],
        _f(f["median_ms"]),
        f"{_f(f['p10_ms'])}-{_f(f['p90_ms'])}",
        d["n"],
        _f(d["median_ms"]),
        f"{_f(d['p10_ms'])}-{_f(d['p90_ms'])}",
    ]


def compare(analyses: list[dict]) -> dict:
    """Median efficiency (or ms per GMAC without a roofline) per unit and target."""
    units = sorted({u for a in analyses for u in a["units"]})
    table = {}
    for u in units:
        vals = []
        for a in analyses:
            v = [c["efficiency"] for c in a["cells"] if c["unit"] == u and c["efficiency"] is not None]
            vals.append(float(np.median(v)) if v else None)
        table[u] = vals
    return {
        "targets": [a["target"] for a in analyses],
        "efficiency": table,
        "never_on_frontier": {a["target"]: a["never_on_frontier"] for a in analyses},
    }


def write_html(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _table(cols, rows) -> str:
    e = html.escape
    return (
        "<table><tr>"
        + "".join(f"<th>{e(str(c))}</th>" for c in cols)
        + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        + "</table>"
    )


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"
