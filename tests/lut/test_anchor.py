"""Anchored measurements: each group's drift is scaled out by the anchor timed in it."""

from __future__ import annotations

import numpy as np
import pytest

from deploycc.lut.anchor import anchor_reference, ratio_reference, ratio_scale_all, scale_all


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


def _ratio_record(ratio: float, raw_ms: float, anchor_rounds: list[float]) -> dict:
    rec = _record(raw_ms, float(np.median(anchor_rounds)))
    rec["anchor"]["round_ms"] = anchor_rounds
    rec["ratio"] = {"ratio": ratio, "ci95_pct": 0.5, "reached": True}
    return rec


def test_ratio_records_are_ratio_times_the_anchor_median_over_the_run():
    # the same architecture (ratio 3) timed in a fast group and a group that ran 40 % slow
    fast = _ratio_record(3.0, 6.1, [2.0, 2.0, 2.1])
    slow = _ratio_record(3.0, 8.5, [2.8, 2.8, 2.9])
    assert ratio_reference([fast, slow]) == pytest.approx(2.45)  # median of all six rounds
    scaled = ratio_scale_all({"a": fast, "b": slow, "c": _record(5.0, None)}, "median")
    assert scaled["a"]["latency"]["median_ms"] == pytest.approx(3 * 2.45)
    assert scaled["b"]["latency"]["median_ms"] == pytest.approx(3 * 2.45)
    assert scaled["b"]["latency"]["min_ms"] == pytest.approx(3 * 2.45)  # every figure by one factor
    assert scaled["b"]["latency_raw"]["median_ms"] == 8.5 and scaled["c"]["latency"]["median_ms"] == 5.0
