"""The report of ``deploycc inspect --report FILE.html``.

Sections: MACs and parameters per layer as bars (layers with either, in graph order), the op
histogram, and with ``--target`` the legality map before and after the target's passes (drawn as
in the build report). Input: the dict ``deploycc inspect --json`` prints.
"""

from __future__ import annotations

from . import figures
from .build import legality_section
from .page import Page, details, figure, note, table


def page(d: dict) -> Page:
    facts = {
        "model": d["model"],
        "inputs": ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in d["inputs"].items()),
        "MACs": f"{d['total_macs'] / 1e9:.4f} G (conv {d['conv_macs'] / 1e9:.4f} G)",
        "parameters": f"{d['params']:,}",
    }
    p = Page("inspect", f"inspect {d['model']}", facts)
    layers = [layer for layer in d["layers"] if layer["macs"] or layer["params"]]
    p.add("MACs per layer", *_bars(layers, "macs", 1e6, "M MACs", "multiply-accumulates per layer"))
    p.add("Parameters per layer", *_bars(layers, "params", 1e3, "thousand parameters", "parameters per layer"))
    ops = d["ops"]
    p.add(
        "Ops",
        figure(figures.hbars(list(ops), {"nodes": list(ops.values())}, "nodes", width=6.0), "nodes per op type", "ops"),
        table(["op", "nodes"], [[k, v] for k, v in ops.items()]),
    )
    if "legality" in d:
        p.add("Legality map", *legality_section(d["legality"]))
    return p


def _bars(layers: list[dict], key: str, scale: float, unit: str, caption: str) -> list:
    if not layers:
        return [note("no layer has MACs or parameters")]
    total = sum(layer[key] for layer in layers) or 1
    fig = figures.hbars(
        [f"{layer['name']} ({layer['op']})"[-50:] for layer in layers],
        {unit: [layer[key] / scale for layer in layers]},
        unit,
    )
    rows = [
        [
            layer["name"],
            layer["op"],
            "x".join(map(str, layer["shape"])),
            layer[key],
            f"{100 * layer[key] / total:.1f} %",
        ]
        for layer in layers
    ]
    return [
        figure(fig, f"{caption}, graph order (total {total / scale:,.3f} {unit})", key),
        details(
            f"the {len(rows)} layers as a table",
            table(["node", "op", "output", "MACs" if key == "macs" else key, "share"], rows),
        ),
    ]
