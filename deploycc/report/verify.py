"""The report of ``deploycc verify --report FILE.html``.

Sections: accuracy (mIoU, pixel accuracy, the reference's scores, the drop and the agreement);
per-class IoU as bars, artifact and reference side by side; the confusion matrix as a heat map
(rows: ground truth, normalised); a few sample images (image | prediction | ground truth |
disagreement with the reference); numerics against the reference; latency against the LUT; the
gates with their verdicts. A section whose check was not asked for says so ("not run") with the
option that runs it. Input: the dict ``deploycc verify --json`` prints, plus the sample pictures of
``deploycc.verify.samples``.
"""

from __future__ import annotations

import numpy as np

from . import figures
from .page import Html, Page, badge, figure, note, table, verdict_of

_PANELS = (
    ("image", "image"),
    ("prediction", "artifact prediction"),
    ("ground_truth", "ground truth"),
    ("disagreement", "disagreement with the reference (red)"),
)


def gate_verdict(g: dict) -> str:
    return verdict_of(g.get("ok"), g.get("status"))


def page(d: dict, pictures: dict | None = None) -> Page:
    gates = d.get("gates", [])
    verdicts = [gate_verdict(g) for g in gates]
    verdict = "failed" if "failed" in verdicts else "not run" if "not run" in verdicts or not verdicts else "passed"
    facts = {
        "artifact": d["artifact"],
        "target": f"{d.get('target')} ({d.get('backend')})",
        "reference": d.get("reference") or "none (no --reference)",
        "data": _data_line(d.get("data")),
    }
    p = Page("verify", f"verify {d['artifact']}", facts, verdict)
    acc = d.get("accuracy")
    if acc:
        p.add("Accuracy", _accuracy_table(d))
        p.add("Per-class IoU", *_iou(d))
        p.add("Confusion matrix", *_confusion(d))
        p.add("Samples", *_samples(pictures))
    else:
        p.add("Accuracy", Html(f"<p>{badge('not run')} no labelled data given (--data DIR)</p>"))
    p.add("Numerics vs reference", *_numerics(d.get("numerics")))
    if d.get("latency"):
        p.add("Latency vs LUT", _latency(d["latency"]))
    p.add("Gates", _gates(gates))
    return p


def _data_line(data: dict | None) -> str | None:
    if not data:
        return None
    return f"{data['path']} ({data['layout']}, {data.get('split') or 'no split'}, {data['images']} images)"


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f} %"


def _accuracy_table(d: dict) -> Html:
    acc, ref, agree = d["accuracy"], d.get("reference_accuracy"), d.get("agreement")
    rows = [
        ["mIoU", _pct(acc["miou"]), _pct(ref["miou"]) if ref else "not run (no --reference)"],
        ["pixel accuracy", _pct(acc["pixel_accuracy"]), _pct(ref["pixel_accuracy"]) if ref else "—"],
        ["classes scored", acc["classes_scored"], ref["classes_scored"] if ref else "—"],
    ]
    if ref:
        rows.append(["mIoU drop (reference − artifact)", f"{100 * (d.get('miou_drop') or 0):.2f} points", ""])
    if agree:
        rows.append(["agreement with the reference: pixels", _pct(agree["pixel_agreement"]), ""])
        rows.append(["agreement mIoU (reference as ground truth)", _pct(agree["miou"]), ""])
    return table(["figure", "artifact", "reference"], rows)


def _iou(d: dict) -> list:
    acc, ref = d["accuracy"], d.get("reference_accuracy")
    names = list(acc["iou"])
    series = {"artifact": [None if v is None else 100 * v for v in acc["iou"].values()]}
    if ref:
        series["reference"] = [None if ref["iou"].get(n) is None else 100 * ref["iou"][n] for n in names]
    fig = figures.hbars(names, series, "IoU (%)")
    rows = [[n, _pct(acc["iou"][n])] + ([_pct(ref["iou"].get(n))] if ref else []) for n in names]
    caption = (
        "IoU per class"
        + (", artifact and reference side by side" if ref else "")
        + "; a class absent from prediction and ground truth has no bar (not scored)"
    )
    return [figure(fig, caption, "iou"), table(["class", "artifact"] + (["reference"] if ref else []), rows)]


def _confusion(d: dict) -> list:
    conf = d.get("confusion")
    if not conf:
        return [note("not run: the verify result carries no confusion matrix")]
    m = np.asarray(conf["matrix"])
    keep = np.flatnonzero(m.sum(axis=0) + m.sum(axis=1))  # classes seen in prediction or ground truth
    labels = [conf["classes"][i] for i in keep]
    fig = figures.heatmap(
        m[np.ix_(keep, keep)],
        labels,
        "artifact prediction",
        "ground truth",
        "share of each ground-truth class's pixels (%)",
    )
    return [
        figure(
            fig, "confusion matrix of the artifact, rows normalised; classes absent from both are left out", "confusion"
        )
    ]


def _samples(pictures: dict | None) -> list:
    if not pictures or not pictures["samples"]:
        return [note("not run: no sample images were drawn")]
    from matplotlib.figure import Figure  # here, not at import: commands that draw nothing skip it
    from matplotlib.patches import Patch

    samples = pictures["samples"]
    panels = [(k, t) for k, t in _PANELS if any(s[k] is not None for s in samples)]
    h, w = samples[0]["image"].shape[:2]
    legend_in = 0.3 + 0.22 * (len(pictures["classes"]) // 7 + 1)
    height = len(samples) * (3.2 * h / w + 0.35) + legend_in + 0.3
    # a fixed grid instead of constrained layout: a dozen image panels need no layout solver (4x faster)
    fig = Figure(figsize=(3.2 * len(panels), height))
    fig.subplots_adjust(
        left=0.01, right=0.99, top=1 - 0.3 / height, bottom=legend_in / height, wspace=0.03, hspace=0.15
    )
    axes = fig.subplots(len(samples), len(panels), squeeze=False)
    for r, s in enumerate(samples):
        for c, (key, title) in enumerate(panels):
            ax = axes[r][c]
            ax.set_axis_off()
            if s[key] is not None:
                ax.imshow(s[key], interpolation="nearest")
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0:
                ax.text(0, -0.04, s["name"], transform=ax.transAxes, fontsize=7, va="top")
            if key == "disagreement" and s["disagreement_share"] is not None:
                ax.text(
                    1,
                    -0.04,
                    f"{100 * s['disagreement_share']:.2f} % of pixels",
                    transform=ax.transAxes,
                    fontsize=7,
                    va="top",
                    ha="right",
                )
    # matplotlib takes an RGB array as a colour; its stubs list only tuples.
    handles = [
        Patch(facecolor=np.asarray(c) / 255, edgecolor="#444", label=n)  # type: ignore[arg-type]
        for n, c in pictures["classes"]
    ]
    fig.legend(handles=handles, loc="lower center", ncols=min(7, max(1, len(handles))), fontsize=8, frameon=False)
    return [
        figure(
            fig,
            f"{len(samples)} images spread over the split, at the labels' resolution; class colours: "
            "Cityscapes palette, black = ignored",
            "samples",
        )
    ]


def _numerics(n: dict | None) -> list:
    if not n:
        return [Html(f"<p>{badge('not run')} no reference given (--reference MODEL)</p>")]
    rows = [
        [
            o["output"],
            o["max_abs"],
            o["allowed_abs"],
            round(o["cosine"], 8),
            badge(verdict_of(o["ok"])) if n["gated"] else "reported, not gated",
        ]
        for o in n["outputs"]
    ]
    parts = [table(["output", "max abs error", "allowed", "cosine", "verdict"], rows)]
    if n.get("note"):
        parts.append(note(n["note"]))
    if n.get("layers"):  # the outputs differ: where artifact and reference part
        from .build import layers_section

        parts += [Html("<h3>Per-layer comparison</h3>"), *layers_section(n["layers"])]
    return parts


def _latency(lat: dict) -> Html:
    rows = [
        ["measured", f"{lat['measured_ms']:.3f} ms ({lat.get('statistic', '')}, {lat.get('threads', '?')} thread(s))"],
        ["LUT prediction", f"{lat['predicted_ms']:.3f} ms"],
        ["error", f"{lat['error_pct']:+.2f} %"],
    ]
    return table(["latency", "value"], rows)


def _gates(gates: list[dict]) -> Html:
    if not gates:
        return note("no gate was given (--min-miou, --max-miou-drop, --reference, --max-latency-error)")
    rows = []
    for g in gates:
        value = "—" if g.get("value") is None else f"{g['value']:.4g}"
        limit = f"{g.get('limit')} {g.get('unit', '')}".strip()
        rows.append([g["gate"], value, limit, badge(gate_verdict(g)), g.get("reason") or g.get("message") or ""])
    return table(["gate", "value", "limit", "verdict", "reason"], rows)
