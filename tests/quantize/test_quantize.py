"""INT8 post-training quantization: cached ranges, Q/DQ models, exclusions, methods."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnxruntime as ort
import pytest

from deploycc.core.errors import UserError
from deploycc.quantize.calibration import calibration_set
from deploycc.quantize.qdq import QuantConfig, calibrate, quantize
from deploycc.quantize.stage import tail_exclusions
from deploycc.targets.onnxruntime import int8_cpu


def _calib(seed=0, count=2):
    return calibration_set("image", (1, 3, 64, 128), None, None, count=count, seed=seed)


def _run(model, feed):
    """The model on ORT's INT8 kernels as deploycc runs them: with the u8u8 precision option on x86
    CPUs without VNNI, whose default u8s8 kernels saturate (deploycc.targets.onnxruntime.int8_cpu)."""
    so = ort.SessionOptions()
    int8_cpu.apply(so)
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feed)[0]


def test_ranges_cover_every_activation_and_are_cached(net):
    cfg = QuantConfig(method="minmax")
    first = calibrate(net, _calib(), cfg)
    assert not first.cache_hit and first.cache_file.is_file()
    activations = {"image"} | {o for n in net.graph.node for o in n.output}
    assert activations <= set(first.values)
    again = calibrate(net, _calib(), cfg)
    assert again.cache_hit and again.values == first.values
    assert calibrate(net, _calib(seed=5), cfg).key != first.key  # other images, other key
    assert calibrate(net, _calib(), QuantConfig(method="percentile")).key != first.key


def test_minmax_ranges_are_the_observed_extremes(net):
    calib = _calib()
    ranges = calibrate(net, calib, QuantConfig(method="minmax"))
    lo = min(float(t.min()) for t in calib.tensors)
    hi = max(float(t.max()) for t in calib.tensors)
    assert ranges.values["image"] == pytest.approx((lo, hi), rel=1e-6)


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_qdq_model_is_int8_and_close_to_fp32(net, method):
    cfg = QuantConfig(method=method, symmetric=False, activation_type="uint8")
    qdq = quantize(net, calibrate(net, _calib(), cfg), cfg)
    ops = Counter(n.op_type for n in qdq.graph.node)
    assert ops["QuantizeLinear"] >= 3 and ops["DequantizeLinear"] >= 6
    feed = _calib(seed=1, count=1).feeds()[0]
    ref, got = _run(net, feed), _run(qdq, feed)
    cosine = float(np.sum(ref * got) / np.linalg.norm(ref) / np.linalg.norm(got))
    assert cosine > 0.99


def test_excluded_nodes_stay_float(net):
    cfg = QuantConfig(exclude=("resize6",))
    qdq = quantize(net, calibrate(net, _calib(), cfg), cfg)
    producer = {o: n for n in qdq.graph.node for o in n.output}
    resize = next(n for n in qdq.graph.node if n.op_type == "Resize")
    assert resize.output[0] == "logits"  # no Q/DQ pair after the float resize
    assert producer[resize.input[0]].op_type == "DequantizeLinear"


def test_tail_exclusions_are_the_data_movement_before_outputs(net):
    assert tail_exclusions(net) == ["resize6"]


def test_bad_settings_are_user_errors(net):
    with pytest.raises(UserError, match="calib-method"):
        QuantConfig(method="kl")
    cfg = QuantConfig(exclude=("no-such-node",))
    with pytest.raises(UserError, match="unknown node"):
        quantize(net, calibrate(net, _calib(), QuantConfig()), cfg)
