"""The predictor: vectorized sums, the differentiable expectation, the space it accepts."""

from __future__ import annotations

import random

import numpy as np
import pytest

from deploycc.core.errors import UserError
from deploycc.lut import Predictor
from deploycc.lut.measure_arch import sample_genotypes
from deploycc.models import resolve_arch


def _latency(spec) -> float:
    """A made-up but distinct latency per entry: channels, kernel, stride and input size."""
    h = spec.inputs[0][2]
    k = 1 + (len(spec.code) % 5)
    return 0.01 * spec.c_in * k * h / spec.stride + 0.1 * spec.c_out / 16


@pytest.fixture(scope="module")
def predictor(make_lut):
    return Predictor(make_lut(_latency))


def test_prediction_is_the_hand_sum(predictor):
    lut = predictor.lut
    geno = sample_genotypes(lut, 1, 3)[0]
    by_hand = (
        lut.entry_ms(lut.stem)
        + lut.entry_ms(lut.head_entry)
        + sum(lut.entry_ms(layer["candidates"][code]) for layer, code in zip(lut.layers, geno))
    )
    assert predictor.predict([geno])[0] == pytest.approx(by_hand)
    assert sum(ms for _, _, ms in predictor.breakdown(geno)) == pytest.approx(by_hand)


def test_vectorized_equals_one_at_a_time(predictor):
    genos = sample_genotypes(predictor.lut, 200, 1)
    batch = predictor.predict(genos)
    assert batch.shape == (200,)
    assert np.allclose(batch, [predictor.predict([g])[0] for g in genos[:20]] + list(batch[20:]))
    assert np.allclose(predictor.predict(predictor.encode(genos)), batch)


def test_expectation_of_one_hot_is_the_prediction_and_is_linear(predictor):
    genos = sample_genotypes(predictor.lut, 2, 5)
    idx = predictor.encode(genos)
    one_hot = np.zeros((2, *predictor.table.shape))
    for n in range(2):
        one_hot[n, np.arange(predictor.num_layers), idx[n]] = 1.0
    assert np.allclose(predictor.expected(one_hot), predictor.predict(genos))
    mix = 0.25 * one_hot[0] + 0.75 * one_hot[1]
    assert predictor.expected(mix) == pytest.approx(
        0.25 * predictor.predict(genos)[0] + 0.75 * predictor.predict(genos)[1]
    )


def test_weight_on_a_candidate_outside_the_lut_is_refused(make_lut):
    lut = make_lut(_latency)
    for layer in lut.layers:
        layer["candidates"].pop("k5_e6")
    pred = Predictor(lut)
    probs = np.full(pred.table.shape, 0.0)
    probs[:, pred.index["k3_e1"]] = 1.0
    assert pred.expected(probs) == pytest.approx(pred.predict([["k3_e1"] * pred.num_layers])[0])
    probs[0, pred.index["k5_e6"]] = 0.5
    with pytest.raises(UserError, match="illegal"):
        pred.expected(probs)


def test_architectures_outside_the_space_are_refused(predictor):
    geno = sample_genotypes(predictor.lut, 1, 0)[0]
    with pytest.raises(UserError, match="outside the LUT's space"):
        predictor.encode([[*geno[:-1], "k9_e9"]])
    with pytest.raises(UserError, match="layers"):
        predictor.encode([geno[:-1]])
    with pytest.raises(UserError, match="space 'squeezenas'"):
        predictor.check_arch(resolve_arch("mac_small"))
    with pytest.raises(UserError, match="input shape 1x3x224x224"):
        predictor.check_arch(resolve_arch("fbnet_a"))
    assert predictor.predict_arch(resolve_arch("fbnet_a").with_input_shape([1, 3, 32, 32])) > 0


def test_reduced_space_refuses_units_it_did_not_profile(make_lut):
    lut = make_lut(_latency)
    keep = {"k3_e1", "skip"}
    for layer in lut.layers:
        layer["candidates"] = {c: k for c, k in layer["candidates"].items() if c in keep}
    pred = Predictor(lut)
    rng = random.Random(0)
    geno = [rng.choice(sorted(layer["candidates"])) for layer in lut.layers]
    assert pred.predict([geno])[0] > 0
    with pytest.raises(UserError, match="'k5_e6' at layer 0 is outside"):
        pred.encode([["k5_e6", *geno[1:]]])
    assert all(set(g) <= keep for g in sample_genotypes(lut, 10, 0))
