"""Anchored measurements: each group's drift is scaled out by the anchor timed in it."""

from __future__ import annotations

import pytest

from deploycc.lut.anchor import anchor_reference, scale_all


def _record(ms: float, anchor_ms: float | None) -> dict:
    rec = {"latency": {"median_ms": ms, "min_ms": ms, "runs": 10}}
    if anchor_ms is not None:
        rec["anchor"] = {"id": "stem", "latency": {"median_ms": anchor_ms, "min_ms": anchor_ms}}
    return rec


def test_a_slow_group_is_scaled_back_and_raw_figures_stay():
    # group 1 ran at normal speed (anchor 2 ms), group 2 40 % slow throughout (anchor 2.8 ms)
    records = {"a": _record(10.0, 2.0), "b": _record(14.0, 2.8), "c": _record(14.0, 2.8), "d": _record(5.0, None)}
    assert anchor_reference(records.values(), "median") == pytest.approx(2.4)  # median over the 2 groups
    scaled = scale_all(records, "median")
    assert scaled["b"]["latency"]["median_ms"] == pytest.approx(12.0)
    assert scaled["a"]["latency"]["median_ms"] == pytest.approx(12.0) and scaled["a"]["anchor_factor"] == 1.2
    assert scaled["a"]["latency_raw"]["median_ms"] == 10.0 and scaled["a"]["latency"]["runs"] == 10
    assert scaled["d"] is records["d"]  # unanchored records are left as they are
    assert scale_all({"x": _record(3.0, None)}, "min")["x"]["latency"]["min_ms"] == 3.0
