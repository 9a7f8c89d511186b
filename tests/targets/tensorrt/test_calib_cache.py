"""The TensorRT 8.5 calibration cache written from deploycc's ranges, parsed back."""

from __future__ import annotations

import struct

import pytest

from deploycc.core.errors import UserError
from deploycc.quantize.calibration import calibration_set
from deploycc.quantize.qdq import QuantConfig, calibrate
from deploycc.targets.tensorrt.calib_cache import cache_from_ranges, parse_cache, scale_hex, version_code, write_cache


def test_version_code_and_big_endian_hex():
    assert version_code("8.5.2") == 8502 and version_code("8.2.3") == 8203 and version_code("10.7") == 10700
    assert scale_hex(1.0) == "3f800000" and scale_hex(0.5) == "3f000000"
    assert scale_hex(0.1) == struct.pack(">f", 0.1).hex()


def test_cache_holds_every_tensor_scale_from_the_ranges(net):
    ranges = calibrate(net, calibration_set("image", (1, 3, 64, 128), None, None, count=2), QuantConfig())
    text = cache_from_ranges(net, ranges.values, "8.5.2")
    header, scales = parse_cache(text)
    assert header == {"version": 8502, "calibrator": "EntropyCalibration2"}
    assert text.splitlines()[0] == "TRT-8502-EntropyCalibration2"
    activations = ["image"] + [o for n in net.graph.node for o in n.output]
    assert list(scales) == activations  # graph order, inputs first, no weights
    for name in activations:
        lo, hi = ranges.values[name]
        assert scales[name] == pytest.approx(max(abs(lo), abs(hi)) / 127.0, rel=1e-6)  # float32 round trip


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


def test_equal_input_ranges_give_elementwise_inputs_one_scale():
    import onnx

    model = onnx.parser.parse_model("""<ir_version: 8, opset_import: ["" : 17]>
        g (float[1,4] a, float[1,4] b, float[1,4] c) => (float[1,4] y) {
            s = Add(a, b)
            y = Mul(s, c)
        }""")
    ranges = {"a": (-1.0, 1.0), "b": (-4.0, 2.0), "c": (0.0, 8.0), "s": (-5.0, 3.0), "y": (-40.0, 24.0)}
    _, plain = parse_cache(cache_from_ranges(model, ranges, "8.5.2"))
    assert plain["a"] != plain["b"]
    _, equal = parse_cache(cache_from_ranges(model, ranges, "8.5.2", equal_input_ops=("Add", "Mul")))
    assert equal["a"] == equal["b"] == pytest.approx(4.0 / 127, rel=1e-6)  # Add(a, b): the larger
    assert equal["s"] == equal["c"] == pytest.approx(8.0 / 127, rel=1e-6)  # Mul(s, c)
    assert equal["y"] == plain["y"]
