"""The learned residual: a real scikit-learn fit on training architectures, scored on held-out ones."""

from __future__ import annotations

import numpy as np

from deploycc.lut import stats
from deploycc.lut.correction import family
from deploycc.lut.measure_arch import sample_genotypes
from deploycc.lut.predict import Predictor
from deploycc.lut.residual import LearnedResidual, arch_features, feature_names, unit_features


def _lut(make_lut):
    return make_lut(lambda spec: 0.1 + 1e-4 * spec.c_out * (2 if spec.stride == 2 else 1))


def test_features_are_the_sums_of_the_units(make_lut):
    pred = Predictor(_lut(make_lut))
    idx = pred.encode(sample_genotypes(pred.lut, 3, 1))
    phi = unit_features(pred, idx, {})
    X = arch_features(phi, idx)
    count = {k: feature_names().index(f"{k}.count") for k in ("g1", "g2", "skip")}
    for row, genotype in zip(X, [[pred.codes[c] for c in r] for r in idx]):
        computing = [
            c for li, c in enumerate(genotype) if pred.lut.entries[pred.lut.layers[li]["candidates"][c]]["measured"]
        ]
        for kind, col in count.items():
            assert row[col] == sum(family(c) == kind for c in computing)


def test_it_learns_a_residual_the_lut_misses_and_predicts_held_out_architectures(make_lut):
    lut = _lut(make_lut)
    pred = Predictor(lut)
    genotypes = sample_genotypes(lut, 60, 7)
    idx = pred.encode(genotypes)
    raw = pred.raw(idx)
    X = arch_features(unit_features(pred, idx, {}), idx)
    names = feature_names()
    # what the network costs beyond the LUT: 0.3 ms per grouped unit, 40 ms per GMAC of dense units
    missed = 0.3 * X[:, names.index("g2.count")] + 40 * X[:, names.index("g1.gmacs")]
    measured = raw + missed + 0.5
    model = LearnedResidual(pred, idx).fit(idx[:30], raw[:30], measured[:30])
    learned = stats.summary(model.apply(idx[30:], raw[30:]), measured[30:])
    assert stats.summary(raw[30:], measured[30:])["mape_pct"] > 5
    assert learned["mape_pct"] < 0.5 and learned["kendall_tau"] > 0.95
    facts = model.to_dict()
    assert set(facts["weights"]) == set(names) and facts["alpha"] > 0
    assert np.isfinite(facts["intercept_ms"])
