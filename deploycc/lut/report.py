"""The validation report: a scatter plot (PNG) and a Markdown or HTML page.

The plot shows predicted against measured latency for the raw LUT and the fitted predictors on
held-out architectures, with the y = x line, the +-10 % band and the noise band (the ground
truth's own test-retest MAPE, with the re-measured architectures). The page carries every figure
of the validation: raw, corrected and affine-calibrated errors side by side, the affine (a, b),
the worst architectures, per-unit residuals and the fitted boundary terms.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from deploycc.core.outputs import write_output_bytes

METRICS = [
    ("MAPE %", "mape_pct", "{:.2f}"),
    ("signed bias %", "bias_pct", "{:+.2f}"),
    ("within ±5 %", "within_5_pct", "{:.1f}"),
    ("within ±10 %", "within_10_pct", "{:.1f}"),
    ("max |error| %", "max_abs_error_pct", "{:.2f}"),
    ("RMSE ms", "rmse_ms", "{:.2f}"),
    ("Kendall τ", "kendall_tau", "{:.3f}"),
    ("Spearman ρ", "spearman_rho", "{:.3f}"),
]


def _noise_band(ax, floor: dict | None, lo: float, hi: float) -> None:
    """The ground truth's own test-retest spread (± its MAPE) around y = x, and the re-measured
    architectures (first measurement against the second)."""
    if not floor:
        return
    w = floor["mape_pct"] / 100
    ax.fill_between(
        [lo, hi],
        [lo * (1 - w), hi * (1 - w)],
        [lo * (1 + w), hi * (1 + w)],
        color="tab:red",
        alpha=0.2,
        label=f"noise floor ±{floor['mape_pct']:.2f} % (test-retest MAPE)",
    )
    ax.scatter(
        floor["first_ms"],
        floor["again_ms"],
        s=22,
        marker="D",
        facecolors="none",
        edgecolors="tab:red",
        label=f"re-measured ({floor['n']})",
    )


def write_plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["architectures"]
    meas = [r["measured_ms"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 6), dpi=110)
    test = [r for r in rows if r["split"] == "test"]
    ax.scatter([r["measured_ms"] for r in rows], [r["raw_ms"] for r in rows], s=18, label="raw LUT sum (all)")
    predictors = [  # (row key, marker size, marker, label, drawn even with no held-out rows)
        ("corrected_ms", 18, "x", "fusion-corrected (held-out)", True),
        ("affine_ms", 14, "+", "affine a·LUT+b (held-out)", True),
        ("learned_ms", 14, "1", "learned residual (held-out)", False),
    ]
    for key, size, marker, label, always in predictors:
        if always or (test and key in test[0]):
            ax.scatter([r["measured_ms"] for r in test], [r[key] for r in test], s=size, marker=marker, label=label)
    lo = min(meas + [r["raw_ms"] for r in rows]) * 0.95
    hi = max(meas + [r["raw_ms"] for r in rows]) * 1.05
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="y = x")
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.15, label="±10 %")
    _noise_band(ax, result.get("noise_floor"), lo, hi)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"measured latency, ms ({result['statistic']})")
    ax.set_ylabel("predicted latency, ms")
    ax.set_title(
        f"LUT vs measured: {result['target']['name']}, {'x'.join(map(str, result['input_shape']))}, "
        f"{result['threads']} thread(s)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def sections(result: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, columns, rows, note) of every table in the report."""
    held = result["held_out"]
    floor = result.get("noise_floor")
    figures = [
        [
            label,
            _f(result["raw_all"][key], fmt),
            _f(held["raw"][key], fmt),
            _f(held["corrected"][key], fmt),
            _f(held["affine"][key], fmt),
            _f(held["learned"][key], fmt) if "learned" in held else "not run",
            _f(held["macs"][key], fmt),
            _f(floor[key], fmt) if floor else "not run",
        ]
        for label, key, fmt in METRICS
    ]
    aff, mac = result["affine"], result["mac_baseline"]
    out = [
        (
            "Errors",
            [
                "metric",
                f"raw LUT (all {result['n']})",
                f"raw LUT (held-out {result['n_test']})",
                "fusion-corrected (held-out)",
                "affine a·LUT+b (held-out)",
                "learned residual (held-out)",
                "MACs a·GMACs+b (held-out)",
                f"noise floor (test-retest {floor['n']})" if floor else "noise floor",
            ],
            figures,
            f"LUT mode {result.get('mode', 'isolated')}; corrections and the MAC baseline fitted on "
            f"{result['n_train']} training architectures; affine a = {aff['a']:.4f}, b = {aff['b_ms']:.2f} ms; "
            f"MACs a = {mac['a_ms_per_gmac']:.3f} ms/GMAC, b = {mac['b_ms']:.2f} ms. " + _anchoring_note(result),
        )
    ]
    out.append(
        (
            "Worst architectures (raw LUT)",
            ["#", "measured ms", "LUT ms", "error %", "genotype"],
            [
                [
                    str(r["index"]),
                    f"{r['measured_ms']:.2f}",
                    f"{r['raw_ms']:.2f}",
                    f"{r['raw_error_pct']:+.2f}",
                    " ".join(r["genotype"]),
                ]
                for r in result["worst"]
            ],
            "",
        )
    )
    out.append(
        (
            "Per-unit residuals (measured − LUT, least squares over unit counts)",
            ["unit", "occurrences", "residual ms", "mean entry ms", "% of entry"],
            [
                [
                    u["unit"],
                    str(u["occurrences"]),
                    f"{u['residual_ms']:+.3f}",
                    f"{u['mean_entry_ms']:.3f}",
                    _f(u["residual_pct_of_entry"], "{:+.1f}"),
                ]
                for u in result["per_unit_residuals"]
            ],
            "negative: the unit costs less inside the network than alone",
        )
    )
    if result.get("per_layer"):
        view = result["per_layer"]
        out.append(
            (
                f"Per unit inside the network (profiled, {view['architectures']} held-out architectures)",
                ["unit", "parts", "mean LUT ms", "in-network − LUT ms"],
                [
                    [u["unit"], str(u["parts"]), f"{u['mean_lut_ms']:.3f}", f"{u['mean_diff_ms']:+.3f}"]
                    for u in view["per_unit"]
                ],
                "profiled node times per layer (ORT profiler / TVM VM instrument) against the LUT entry of the "
                "same unit; node times leave out the work between nodes",
            )
        )
        out.append(
            (
                "Per layer (first profiled architecture)",
                ["layer", "unit", "LUT ms", "in-network ms"],
                [
                    [r["layer"], r["unit"], f"{r['lut_ms']:.3f}", _f(r["in_network_ms"], "{:.3f}")]
                    for r in view["rows"]
                    if r["arch"] == 0
                ],
                "",
            )
        )
    terms = result["correction"]["terms"]
    out.append(
        (
            "Fitted boundary terms (fusion correction)",
            ["boundary", "ms per MB (entries: ms each)"],
            [[k, f"{v:+.4f}"] for k, v in terms.items() if v],
            f"ridge alpha {result['correction']['alpha']}",
        )
    )
    return out


def _anchoring_note(result: dict) -> str:
    """How the ground truth was anchored, and the noise floor's speed change between runs."""
    a = result.get("anchoring") or {}
    if a.get("mode") == "ratio":
        text = (
            f"Ground truth: ratio to the anchor network per round x its median {a['anchor_median_ms']:.2f} ms; "
            f"95 % interval median ±{a['ci95_pct_median']:.2f} %, max ±{a['ci95_pct_max']:.2f} % "
            f"(target ±{a['rule']['target_pct']} %, reached by {a['reached']} of {result['n']})."
        )
    else:
        text = f"Ground truth anchored: {a.get('mode', 'by group')}."
    if a.get("scale") == "lut" and a.get("speed_change_pct") is not None:
        text += (
            f" Put on the anchored LUT's scale (its anchor median {a['lut_anchor_median_ms']:.2f} ms); the machine ran "
            f"{a['speed_change_pct']:+.1f} % against the build."
        )
    if a.get("warning"):
        text += f" {a['warning']}."
    floor = result.get("noise_floor")
    if floor and floor.get("speed_change_pct") is not None:
        text += f" The machine's speed between the run and the re-measurement: {floor['speed_change_pct']:+.1f} %."
    return text


def markdown(result: dict) -> str:
    lines = [
        f"# LUT validation: {result['target']['name']} ({result['target']['backend']})",
        "",
        f"- LUT `{result['lut']}`; space {result['space']} {result.get('backbone') or ''}, input "
        f"{'x'.join(map(str, result['input_shape']))}; {result['threads']} thread(s); statistic {result['statistic']}",
        f"- {result['n']} sampled architectures (seed {result['seed']}), each built and timed end to end",
        f"- toolchain: {', '.join(f'{k} {v}' for k, v in sorted(result['toolchain'].items()))}",
        f"- machine: {result['machine'].get('cpu_model', '?')}, governor {result['machine'].get('governor')}, "
        f"load average {result['machine'].get('load_average')}",
        "",
    ]
    if result.get("mismatch_allowed"):
        lines += [f"- **mismatch allowed**: {'; '.join(result['mismatch_allowed'])}", ""]
    lines += ["![predicted vs measured](scatter.png)", ""]
    for title, cols, rows, note in sections(result):
        lines += [f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines += ["", note, ""] if note else [""]
    return "\n".join(lines)


def html_page(result: dict) -> str:
    e = html.escape
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>LUT validation {e(result['target']['name'])}</title>",
        "<style>body{font-family:sans-serif;max-width:70em}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "td{font-family:monospace}</style>",
        f"<h1>LUT validation: {e(result['target']['name'])}</h1>",
        f"<p>{result['n']} architectures, input {'x'.join(map(str, result['input_shape']))}, "
        f"{result['threads']} thread(s), statistic {e(result['statistic'])}; machine "
        f"{e(str(result['machine'].get('cpu_model', '?')))}, load {e(str(result['machine'].get('load_average')))}</p>",
        "<img src='scatter.png' alt='predicted vs measured'>",
    ]
    for title, cols, rows, note in sections(result):
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>" + (f"<p>{e(note)}</p>" if note else ""))
    return "\n".join(parts) + "\n"


def write_report(result: dict, folder: Path, fmt: str = "md") -> dict[str, Path]:
    """scatter.png, report.md or report.html and result.json in ``folder`` (each written atomically)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    files = {"plot": write_plot(result, folder / "scatter.png")}
    text = markdown(result) if fmt == "md" else html_page(result)
    files["report"] = _write(folder / f"report.{fmt}", text)
    files["json"] = _write(folder / "result.json", json.dumps(result, indent=1, default=str) + "\n")
    return files


REPORT_NAMES = ("scatter.png", "report.md", "report.html", "result.json")


def _write(path: Path, text: str) -> Path:
    write_output_bytes(path, text.encode())
    return path


def _f(value, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)
