"""Per layer: the LUT entry against the same unit's time inside the compiled network.

``lut validate --profile K`` builds K of the sampled architectures on the LUT's target, profiles
each (``deploycc.verify.profile``: ORT's profiler, TVM's VM instrument) and lines every part of
the LUT sum (stem, each searchable layer's unit, head; for an in-context LUT the reference and
each layer's delta) up with the profiled time of the nodes that came from that part. That shows
where a LUT's error comes from: which units cost more or less inside the network than the LUT
says. Profiled node times leave out what happens between nodes (allocation, the runtime's own
work) and include the profiler's overhead, so their sum is not the end-to-end latency; the
comparison is per part, not of totals.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .predict import Predictor
from .table import LUT


def layer_view(lut: LUT, genotypes: list, runs: int = 5) -> dict:
    """Per architecture and part: LUT ms and profiled in-network ms; per unit: mean difference."""
    from deploycc.models import save_arch
    from deploycc.pipeline.pipeline import BuildOptions, build
    from deploycc.verify.profile import by_layer, profile_artifact

    pred = Predictor(lut)
    rows: list[dict[str, Any]] = []
    for n, geno in enumerate(genotypes):
        with tempfile.TemporaryDirectory(prefix="deploycc-layers-") as tmp_name:
            tmp = Path(tmp_name)
            path = save_arch(pred.arch_of(geno, name=f"profiled-{n}"), tmp / "arch.json")
            build(str(path), lut.target["name"], tmp / "art", BuildOptions(verify_passes=False, threads=lut.threads))
            profiled = {r["layer"]: r["ms"] for r in by_layer(profile_artifact(tmp / "art", lut.threads, runs))}
        for part, _, ms in pred.breakdown(geno):
            layer, unit = _layer_of(part)
            rows.append(
                {
                    "arch": n,
                    "layer": layer,
                    "unit": unit,
                    "lut_ms": ms,
                    "in_network_ms": profiled.get(layer, 0.0) if layer != "reference" else None,
                }
            )
    units = sorted({r["unit"] for r in rows if r["in_network_ms"] is not None})
    per_unit = []
    for u in units:
        d = [r["in_network_ms"] - r["lut_ms"] for r in rows if r["unit"] == u and r["in_network_ms"] is not None]
        per_unit.append(
            {
                "unit": u,
                "parts": len(d),
                "mean_diff_ms": float(np.mean(d)),
                "mean_lut_ms": float(np.mean([r["lut_ms"] for r in rows if r["unit"] == u])),
            }
        )
    return {
        "architectures": len(genotypes),
        "profile_runs": runs,
        "rows": rows,
        "per_unit": sorted(per_unit, key=lambda r: -abs(r["mean_diff_ms"])),
    }


def _layer_of(part: str) -> tuple[str, str]:
    """Predictor.breakdown's part name -> (profile layer name, unit)."""
    if part.startswith("layer "):
        where, unit = part.split(": ", 1)
        return where, unit
    return part, part
