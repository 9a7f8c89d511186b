"""Error statistics against hand-computed values and scipy; the corrections on known data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from deploycc.core.errors import UserError
from deploycc.lut import Predictor
from deploycc.lut.correction import FusionCorrection
from deploycc.lut.measure_arch import sample_genotypes
from deploycc.lut.stats import fit_affine, summary
from deploycc.lut.validate import score


def test_summary_against_hand_computed_values():
    meas = [10.0, 20.0, 40.0, 50.0]
    pred = [11.0, 19.0, 44.0, 45.0]  # errors +10 %, -5 %, +10 %, -10 %
    s = summary(pred, meas)
    assert s["mape_pct"] == pytest.approx((10 + 5 + 10 + 10) / 4)
    assert s["bias_pct"] == pytest.approx((10 - 5 + 10 - 10) / 4)
    assert s["within_5_pct"] == pytest.approx(25.0)
    assert s["within_10_pct"] == pytest.approx(100.0)
    assert s["max_abs_error_pct"] == pytest.approx(10.0)
    assert s["rmse_ms"] == pytest.approx(np.sqrt((1 + 1 + 16 + 25) / 4))
    assert s["kendall_tau"] == pytest.approx(1.0) and s["spearman_rho"] == pytest.approx(1.0)


def test_rank_correlations_by_hand_and_against_scipy():
    s = summary([1, 2, 3, 4], [1, 3, 2, 4])  # one discordant pair of six; sum d^2 = 2
    assert s["kendall_tau"] == pytest.approx((5 - 1) / 6)
    assert s["spearman_rho"] == pytest.approx(1 - 6 * 2 / (4 * (16 - 1)))
    rng = np.random.default_rng(0)
    m = rng.uniform(50, 150, 40)
    p = m * rng.normal(1, 0.1, 40)
    got = summary(p, m)
    assert got["kendall_tau"] == pytest.approx(sps.kendalltau(p, m)[0])
    assert got["spearman_rho"] == pytest.approx(sps.spearmanr(p, m)[0])


def test_bad_inputs_to_the_statistics():
    with pytest.raises(UserError):
        summary([1, 2], [1])
    with pytest.raises(UserError):
        summary([1, 2], [1, 0])
    with pytest.raises(UserError):
        fit_affine([3, 3, 3], [1, 2, 3])
    assert summary([5, 5], [1, 2])["kendall_tau"] is None


def test_affine_fit_recovers_a_and_b():
    p = np.array([10.0, 20.0, 35.0, 50.0])
    a, b = fit_affine(p, 0.8 * p + 3.0)
    assert (a, b) == (pytest.approx(0.8), pytest.approx(3.0))


def _per_spec(spec) -> float:
    return 0.02 * spec.c_in * spec.inputs[0][2] / spec.stride + 0.5


def test_fusion_correction_learns_boundary_costs_and_generalizes(make_lut):
    """Measured = LUT - 0.3 ms per timed entry - 2 ms/MB where two g1 units meet: the correction,
    fitted on 15 architectures, predicts 25 held-out ones almost exactly; the raw LUT does not."""
    pred = Predictor(make_lut(_per_spec, shape=(1, 3, 64, 64)))
    genos = sample_genotypes(pred.lut, 40, 0)
    idx = pred.encode(genos)
    X = FusionCorrection.features(pred, idx)
    names = FusionCorrection.feature_names(pred)
    measured = pred.raw(idx) - 0.3 * X[:, names.index("entries")] - 2.0 * X[:, names.index("g1>g1")]
    result = score(pred, genos, measured, n_train=15)
    held = result["held_out"]
    assert held["raw"]["mape_pct"] > 3 * held["corrected"]["mape_pct"]
    assert held["corrected"]["within_10_pct"] == 100.0
    assert held["corrected"]["mape_pct"] < 1.0
    assert result["n_test"] == 25 and [r["split"] for r in result["architectures"]].count("train") == 15


def test_identity_units_are_not_boundaries(make_lut):
    pred = Predictor(make_lut(_per_spec))
    lut = pred.lut
    layer = next(
        i
        for i, spec in enumerate(lut.layers)
        if "skip" in spec["candidates"] and not lut.entries[spec["candidates"]["skip"]].get("measured", True)
    )
    genos = sample_genotypes(lut, 1, 0)
    base = list(genos[0])
    with_identity = list(base)
    with_identity[layer] = "skip"
    x_id = FusionCorrection.features(pred, pred.encode([with_identity]))[0]
    names = FusionCorrection.feature_names(pred)
    n_timed = sum(
        1 for li, c in enumerate(with_identity) if lut.entries[lut.layers[li]["candidates"][c]].get("measured", True)
    )
    assert x_id[names.index("entries")] == n_timed
