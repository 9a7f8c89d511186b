"""The noise floor: test-retest figures of a ground truth measured twice."""

from __future__ import annotations

import pytest

from deploycc.lut.noise import noise_floor, retest, retest_indices


def test_retest_sample_spreads_over_the_architectures_and_skips_the_anchor():
    assert retest_indices(64, 8) == [1, 10, 19, 28, 36, 45, 54, 63]
    assert retest_indices(3, 8) == [1, 2] and retest_indices(10, 0) == []


def test_noise_floor_figures_of_two_measurements():
    floor = noise_floor({1: 100.0, 2: 200.0, 3: 300.0}, {1: 101.0, 2: 198.0, 3: 303.0}, 4.0)
    assert floor["mape_pct"] == pytest.approx(100 * (0.01 + 0.01 + 0.01) / 3)
    assert floor["bias_pct"] == pytest.approx(100 * (0.01 - 0.01 + 0.01) / 3)
    assert floor["kendall_tau"] == pytest.approx(1.0) and floor["n"] == 3 and floor["speed_change_pct"] == 4.0


def _recorded(ratio: float, anchor_rounds: list[float]) -> dict:
    return {
        "latency": {"median_ms": ratio * sorted(anchor_rounds)[len(anchor_rounds) // 2]},
        "ratio": {"ratio": ratio},
        "anchor": {"round_ms": anchor_rounds},
    }


def test_a_retest_run_on_a_slower_machine_is_put_on_the_first_runs_scale():
    # recorded ratios: the first run's anchor at 10 ms, the retest's at 12 ms (machine 20 % slower)
    first = [_recorded(r, [10.0, 10.0, 10.0]) for r in (1.0, 2.0, 3.0, 4.0)]
    second = {str(j): _recorded(r, [12.0, 12.0, 12.0]) for j, r in enumerate((1.0, 2.02, 2.97, 4.0))}
    seen = []

    def measure_again(archs, cache):
        seen.append(list(archs))
        return second

    floor = retest(measure_again, ["a0", "a1", "a2", "a3"], first, "median", 3)
    assert seen == [["a0", "a1", "a2", "a3"]]  # the anchor first, then the sample
    assert floor["again_ms"] == pytest.approx([20.2, 29.7, 40.0])
    assert floor["mape_pct"] == pytest.approx(100 * (0.01 + 0.01 + 0) / 3)
    assert floor["speed_change_pct"] == pytest.approx(20.0)
    # a validation with an anchor network of its own re-measures only the picked architectures
    shifted = {str(int(j) - 1): rec for j, rec in second.items() if j != "0"}
    seen.clear()
    floor = retest(
        lambda archs, cache: seen.append(list(archs)) or shifted,
        ["a0", "a1", "a2", "a3"],
        first,
        "median",
        3,
        lead=False,
    )
    assert seen == [["a1", "a2", "a3"]] and floor["again_ms"] == pytest.approx([20.2, 29.7, 40.0])
