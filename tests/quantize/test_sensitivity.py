"""Per-layer sensitivity and the accuracy budget (--max-miou-drop)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from deploycc.core.numerics import Tolerance, argmax_agreement, compare
from deploycc.quantize.calibration import calibration_set
from deploycc.quantize.qdq import QuantConfig, calibrate
from deploycc.quantize.sensitivity import (
    DeviceRules,
    fit_budget,
    layer_precisions,
    layer_sensitivity,
    output_drop,
    run_model,
)


def _setup(net):
    cfg = QuantConfig(symmetric=False, activation_type="uint8")
    ranges = calibrate(net, calibration_set("image", (1, 3, 64, 128), None, None, count=2), cfg)
    feeds = calibration_set("image", (1, 3, 64, 128), None, None, count=1, seed=1).feeds()
    return cfg, ranges, feeds, run_model(net, feeds)


def test_output_drop_is_zero_for_identical_outputs_and_counts_flips():
    ref = np.zeros((1, 2, 2, 2), np.float32)
    ref[:, 0] = 1.0
    assert output_drop([ref], [ref]) == {"rel_l2": 0.0, "miou_drop": 0.0, "pixel_agreement": 100.0}
    flipped = ref.copy()
    flipped[0, 1, 0, 0] = 2.0  # one of 4 pixels changes class
    drop = output_drop([ref], [flipped])["miou_drop"]
    assert 0 < drop <= 100


def test_every_layer_is_ranked(net):
    cfg, ranges, feeds, refs = _setup(net)
    rows = layer_sensitivity(net, ranges, cfg, feeds, refs)
    assert sorted(r["node"] for r in rows) == ["add4", "conv0", "conv2", "conv5", "resize6"]
    assert rows == sorted(rows, key=lambda r: (r["miou_drop"], r["rel_l2"]), reverse=True)
    assert all(r["rel_l2"] > 0 for r in rows if r["op"] == "Conv")  # a lone Resize gets no Q/DQ: 0 is right


def test_budget_keeps_the_fewest_layers(net):
    cfg, ranges, feeds, refs = _setup(net)
    rows = layer_sensitivity(net, ranges, cfg, feeds, refs)
    loose = fit_budget(net, ranges, cfg, feeds, refs, rows, budget=100.0)
    assert loose["met"] and loose["kept"] == []
    tight = fit_budget(net, ranges, cfg, feeds, refs, rows, budget=-1.0)  # unreachable: everything kept
    assert not tight["met"] and len(tight["kept"]) == 5


def test_layer_precisions_string():
    assert layer_precisions([]) == ""
    assert layer_precisions(["a", "b"]) == "--precisionConstraints=obey --layerPrecisions=a:fp16,b:fp16"


def test_argmax_agreement_gate():
    ref = np.random.default_rng(0).standard_normal((1, 5, 4, 4)).astype(np.float32)
    assert argmax_agreement(ref, ref) == 1.0
    other = ref.copy()
    other[0, :, 0, 0] = other[0, ::-1, 0, 0]
    stats = compare("y", ref, other, Tolerance(atol_rel=10, rtol=0, min_argmax_agreement=0.99))
    assert stats.argmax_agreement < 0.99 and not stats.ok


def test_fp16_trials_run_the_float_layers_in_float16_and_keep_the_qdq_scales(net):
    """On a TensorRT FP16 target the fit's trials are what the device runs: with every layer kept
    out of INT8 the model is not FP32 (the kept layers run in float16), and the INT8 layers keep
    their float32 Q/DQ scales."""
    from deploycc.quantize.qdq import quantize
    from deploycc.targets.fp16_sim import fp16_model

    cfg, ranges, feeds, refs = _setup(net)
    rows = layer_sensitivity(net, ranges, cfg, feeds, refs)
    everything = tuple(r["node"] for r in rows)
    all_float = quantize(net, ranges, replace(cfg, exclude=everything))
    assert output_drop(refs, run_model(all_float, feeds))["rel_l2"] == 0.0  # FP32: the fit's old yardstick
    assert 0.0 < output_drop(refs, run_model(all_float, feeds, fp16=True))["rel_l2"] < 1e-2
    qdq = quantize(net, ranges, cfg)
    half = fp16_model(qdq, keep_qdq=True)
    floats = {t.name: t.data_type for t in half.graph.initializer}
    scales = [n.input[1] for n in half.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert scales and all(floats[s] == onnx.TensorProto.FLOAT for s in scales if s in floats)
    half_float = fp16_model(all_float, keep_qdq=True)  # the kept convs: float16 weights
    weights = {t.name: t.data_type for t in half_float.graph.initializer}
    assert {weights[n.input[1]] for n in half_float.graph.node if n.op_type == "Conv"} == {onnx.TensorProto.FLOAT16}
    tight = fit_budget(net, ranges, cfg, feeds, refs, rows, budget=-1.0, device=DeviceRules(fp16=True))
    assert not tight["met"] and tight["rel_l2"] > 0.0 and len(tight["kept"]) == 5
    assert all({"kept_layers", "miou_drop", "pixel_agreement"} <= set(t) for t in tight["trials"])


def test_trials_share_the_dlas_element_wise_scales(net):
    """A DLA target's trials quantize as its build does: the Add's two INT8 inputs at one scale."""
    from deploycc.quantize.shared_scales import share_input_scales

    cfg, ranges, _feeds, _refs = _setup(net)
    plain = DeviceRules().qdq(net, ranges, cfg)
    shared = DeviceRules(shared_scale_ops=("Add",)).qdq(net, ranges, cfg)
    assert share_input_scales(plain, ("Add",))[1] >= 1  # the plain one reads them at two scales
    assert share_input_scales(shared, ("Add",))[1] == 0  # already one scale: nothing left to widen
