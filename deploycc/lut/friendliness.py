"""Hardware friendliness of candidate units, from one LUT per target, and reduced search spaces.

For every searchable layer (a *position*: depth, input resolution, channels, stride) and every
candidate unit of a LUT:

* **latency per MAC** (ms per GMAC) and the **roofline**: the least time the target's peak
  arithmetic (``[hardware] peak_ops``, two ops per MAC) and DRAM bandwidth
  (``dram_bandwidth``; bytes of the unit's input, output and weights) allow,
  ``max(2 * MACs / peak, bytes / bandwidth)``; *efficiency* is roofline / measured (1: at the
  roofline). A target file without those figures gets no roofline (``null``), never a guess;
* the **placement effect**: how a unit's ms per GMAC changes with its position (depth and
  resolution), as the ratio of its largest to its smallest value over the positions;
* the **latency-MACs frontier** at each position: a unit is dominated there when another unit
  costs no more time and computes at least as many MACs (one of the two strictly); units that
  are dominated at every position are *never on the frontier*.

``reduce`` keeps, at every layer, the units on the frontier of at least one of the LUTs (a unit
dominated on every target at that position goes) and writes a space file (``space.py``).
``equal_macs`` compares the predicted latency of architectures sampled from the full and the
reduced space at equal MACs (MAC bins of the full space's sample). In-context LUTs are read as
they are: their entries are marginal costs inside the reference network (which may be negative).
Written by hand: no library computes these from a LUT.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np

from .predict import Predictor
from .space import ReducedSpace
from .table import LUT


def unit_cost(lut: LUT, layer: dict, code: str, cache: dict) -> tuple[float, float]:
    """(GMACs, MB moved: input + output + weights at 4 bytes) of ``code`` at ``layer``."""
    key = (lut.space, code, layer["c_in"], layer["c_out"], layer["stride"], layer["in_h"], layer["in_w"])
    if key not in cache:
        from deploycc.models import build_unit, count_macs

        module = build_unit(lut.space, code, layer["c_in"], layer["c_out"], layer["stride"])
        shape = (1, layer["c_in"], layer["in_h"], layer["in_w"])
        macs = count_macs(module, shape, on_meta=False).total / 1e9  # meta tensors are far slower here
        h, w = (
            (layer["in_h"] + 1) // 2 if layer["stride"] == 2 else layer["in_h"],
            (layer["in_w"] + 1) // 2 if layer["stride"] == 2 else layer["in_w"],
        )
        weights = sum(p.numel() for p in module.parameters())
        moved = 4 * (np.prod(shape) + layer["c_out"] * h * w + weights) / 1e6
        cache[key] = (float(macs), float(moved))
    return cache[key]


def analyse(lut: LUT, macs_cache: dict | None = None) -> dict:
    """Per (layer, unit) figures, the frontier, the placement effect and the never-on-frontier units."""
    from deploycc.targets import load_target

    target = load_target(lut.target["name"])
    peak, bandwidth = target.peak_ops(), target.dram_bandwidth()
    cache = macs_cache if macs_cache is not None else {}
    rows = []
    for li, layer in enumerate(lut.layers):
        cells = []
        for code, key in layer["candidates"].items():
            gmacs, mb = unit_cost(lut, layer, code, cache)
            ms = lut.entry_ms(key)
            roof = None if not (peak and bandwidth) else 1e3 * max(2 * gmacs * 1e9 / peak, mb * 1e6 / bandwidth)
            cells.append(
                {
                    "layer": li,
                    "unit": code,
                    "ms": ms,
                    "gmacs": gmacs,
                    "mb": mb,
                    "ms_per_gmac": ms / gmacs if gmacs > 0 else None,
                    "roofline_ms": roof,
                    "efficiency": roof / ms if roof is not None and ms > 0 else None,
                    "resolution": f"{layer['in_h']}x{layer['in_w']}",
                }
            )
        for c in cells:
            c["on_frontier"] = not any(_dominates(o, c) for o in cells if o is not c)
        rows += cells
    order = Predictor(lut).index  # the space's own unit order
    codes = sorted({r["unit"] for r in rows}, key=lambda c: order.get(c, 0))
    never = [c for c in codes if not any(r["on_frontier"] for r in rows if r["unit"] == c)]
    return {
        "lut": lut.source,
        "target": lut.target["name"],
        "mode": lut.mode,
        "statistic": lut.statistic,
        "peak_ops": peak,
        "dram_bandwidth": bandwidth,
        "units": codes,
        "layers": len(lut.layers),
        "cells": rows,
        "never_on_frontier": never,
        "placement": placement(rows, codes),
    }


def _dominates(a: dict, b: dict) -> bool:
    return a["ms"] <= b["ms"] and a["gmacs"] >= b["gmacs"] and (a["ms"] < b["ms"] or a["gmacs"] > b["gmacs"])


def placement(rows: list[dict], codes: list[str]) -> list[dict]:
    """Per unit: ms per GMAC over its positions, and the ratio of the largest to the smallest."""
    out = []
    for code in codes:
        values = [(r["layer"], r["ms_per_gmac"]) for r in rows if r["unit"] == code and r["ms_per_gmac"]]
        positive = [v for _, v in values if v > 0]
        out.append(
            {
                "unit": code,
                "positions": len(values),
                "ms_per_gmac": dict(values),
                "spread": max(positive) / min(positive) if len(positive) > 1 else None,
            }
        )
    return out


def reduce(luts: list[LUT], analyses: list[dict]) -> ReducedSpace:
    """Each layer keeps the units on the frontier of at least one LUT (never none)."""
    first = luts[0]
    layers = []
    for li, layer in enumerate(first.layers):
        keep = {r["unit"] for a in analyses for r in a["cells"] if r["layer"] == li and r["on_frontier"]}
        layers.append([c for c in layer["candidates"] if c in keep] or list(layer["candidates"]))
    return ReducedSpace(
        first.space,
        first.backbone,
        tuple(first.input_shape),
        layers,
        rule="units on the latency-MACs frontier at their layer on at least one target",
        sources=[lut.source for lut in luts],
    )


def equal_macs(
    lut: LUT, space: ReducedSpace, analysis: dict, n: int = 2000, bins: int = 5, seed: int = 0
) -> list[dict]:
    """Predicted latency of ``n`` architectures sampled from the full and the reduced space, per MAC
    bin (quantiles of the full sample): count, median and 10-90 % range of each. ``analysis`` is
    :func:`analyse` of ``lut`` (its MACs per layer and unit)."""
    pred, rng = Predictor(lut), random.Random(seed)
    gmacs = {(c["layer"], c["unit"]): c["gmacs"] for c in analysis["cells"]}
    full_choices = [list(layer["candidates"]) for layer in lut.layers]

    def sample(choices):
        genos = [[rng.choice(c) for c in choices] for _ in range(n)]
        macs = np.array([sum(gmacs[i, g] for i, g in enumerate(geno)) for geno in genos])
        return macs, pred.predict(genos)

    full_macs, full_ms = sample(full_choices)
    red_macs, red_ms = sample(space.layers)
    edges = np.quantile(full_macs, np.linspace(0, 1, bins + 1))
    out = []
    for lo, hi in itertools.pairwise(edges):
        row: dict[str, Any] = {"gmacs": [float(lo), float(hi)]}
        for name, macs, ms in (("full", full_macs, full_ms), ("reduced", red_macs, red_ms)):
            sel = ms[(macs >= lo) & (macs <= hi)]
            row[name] = {
                "n": int(sel.size),
                "median_ms": float(np.median(sel)) if sel.size else None,
                "p10_ms": float(np.percentile(sel, 10)) if sel.size else None,
                "p90_ms": float(np.percentile(sel, 90)) if sel.size else None,
            }
        out.append(row)
    return out
