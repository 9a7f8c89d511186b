"""The TensorRT 8.5 calibration cache written from the Q/DQ model's activation scales, parsed back."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from onnx import numpy_helper

from deploycc.core.errors import UserError
from deploycc.quantize.calibration import calibration_set
from deploycc.quantize.qdq import QuantConfig, calibrate, quantize
from deploycc.targets.tensorrt.calib_cache import (
    cache_from_qdq,
    parse_cache,
    qdq_activation_scales,
    scale_hex,
    version_code,
    write_cache,
)

TRT = QuantConfig(method="minmax", symmetric=True, activation_type="int8")  # TensorRT's INT8: symmetric


def test_version_code_and_big_endian_hex():
    assert version_code("8.5.2") == 8502 and version_code("8.2.3") == 8203 and version_code("10.7") == 10700
    assert scale_hex(1.0) == "3f800000" and scale_hex(0.5) == "3f000000"
    assert scale_hex(0.1) == struct.pack(">f", 0.1).hex()


def _scales_in_qdq(qdq) -> dict[str, float]:
    """Scale of every activation QuantizeLinear, read straight from the Q/DQ model's initializers."""
    values = {t.name: numpy_helper.to_array(t) for t in qdq.graph.initializer}
    return {
        n.input[0]: float(values[n.input[1]])
        for n in qdq.graph.node
        if n.op_type == "QuantizeLinear" and n.input[0] not in values
    }


def test_cache_holds_the_q_dq_models_own_scales_bit_for_bit(net):
    ranges = calibrate(net, calibration_set("image", (1, 3, 64, 128), None, None, count=2), TRT)
    qdq = quantize(net, ranges, TRT)
    text = cache_from_qdq(net, qdq, "8.5.2")
    header, scales = parse_cache(text)
    assert header == {"version": 8502, "calibrator": "EntropyCalibration2"}
    assert text.splitlines()[0] == "TRT-8502-EntropyCalibration2"
    in_qdq = _scales_in_qdq(qdq)
    # the graph output is renamed by ORT's quantizer (<name>_QuantizeLinear_Input): the cache uses the FP32 name
    in_qdq["logits"] = in_qdq.pop("logits_QuantizeLinear_Input")
    assert scales == {n: np.float32(v) for n, v in in_qdq.items()}
    activations = ["image"] + [o for n in net.graph.node for o in n.output]
    assert list(scales) == [a for a in activations if a in scales]  # graph order, no weights


# Conv -> Relu -> AveragePool -> Resize: ORT's quantizer gives the Relu's input the Relu's range and
# the pool and resize outputs their input's scale, so the raw calibration ranges are not the scales
# the Q/DQ model computes with. A cache written from the raw ranges (deploycc <= this fix) disagreed.
MOVED_RANGES = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,32,32] image) => (float[1,4,32,32] out)
{ c = Conv<pads=[1,1,1,1]>(image, w, b)
  r = Relu(c)
  p = AveragePool<kernel_shape=[4,4], strides=[4,4]>(r)
  out = Resize<mode="linear", coordinate_transformation_mode="half_pixel">(p, , scales)
}"""


def test_cache_follows_the_ranges_ort_moved_not_the_raw_calibration():
    from helpers import make_model

    model = make_model(MOVED_RANGES, {"w": (4, 3, 3, 3), "b": (4,)}, seed=5)
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales"))
    ranges = calibrate(model, calibration_set("image", (1, 3, 32, 32), None, None, count=2), TRT)
    qdq = quantize(model, ranges, TRT)
    _, scales = parse_cache(cache_from_qdq(model, qdq, "8.5.2"))
    raw = {n: max(abs(lo), abs(hi)) / 127 for n, (lo, hi) in ranges.values.items()}
    assert raw["c"] != pytest.approx(raw["r"]) and raw["p"] != pytest.approx(raw["r"])  # the net shows the effect
    assert scales["c"] == np.float32(raw["r"])  # Relu input: the Relu's output range
    assert scales["p"] == scales["r"] and scales["out"] == scales["r"]  # pool, resize: the input's scale
    assert scales == qdq_activation_scales(model, qdq)


def test_an_asymmetric_q_dq_model_is_refused():
    from int8_nets import small_net

    net = small_net()
    uint8 = QuantConfig(method="minmax", symmetric=False, activation_type="uint8")
    ranges = calibrate(net, calibration_set("image", (1, 3, 64, 128), None, None, count=1), uint8)
    with pytest.raises(UserError, match=r"zero point .* TensorRT's INT8 is symmetric"):
        cache_from_qdq(net, quantize(net, ranges, uint8), "8.5.2")


def test_zero_range_gets_a_valid_tiny_scale():
    _, scales = parse_cache(write_cache({"dead": 0.0}, "8.5.2"))
    assert 0 < scales["dead"] < 1e-30


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "first line"),
        ("TRT-8502-EntropyCalibration2\nimage 3f800000\n", "line 2"),
        ("hello\n", "first line"),
    ],
)
def test_malformed_caches_are_rejected(text, message):
    with pytest.raises(UserError, match=message):
        parse_cache(text)


def test_unknown_calibrator_or_bad_scale_is_refused():
    with pytest.raises(UserError, match="calibrator"):
        write_cache({"a": 1.0}, "8.5.2", "Percentile")
    with pytest.raises(UserError, match="scale"):
        write_cache({"a": float("nan")}, "8.5.2")
