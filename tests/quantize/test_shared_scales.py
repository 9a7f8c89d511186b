"""The DLA's equal element-wise input ranges, applied to the Q/DQ model itself."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from deploycc.core.numerics import run_reference
from deploycc.quantize.calibration import calibration_set
from deploycc.quantize.qdq import QuantConfig, calibrate, quantize
from deploycc.quantize.shared_scales import share_input_scales
from deploycc.targets.tensorrt.calib_cache import qdq_activation_scales

TRT = QuantConfig(method="minmax", symmetric=True, activation_type="int8")

# a feeds two Adds (with b, and with c): the sharing must reach a fixed point across both groups.
TWO_ADDS = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,8,8] image) => (float[1,3,8,8] y)
{ a = Conv(image, wa)
  b = Conv(image, wb)
  c = Conv(image, wc)
  s = Add(a, b)
  t = Add(a, c)
  y = Mul(s, t)
}"""


def _model():
    rng = np.random.default_rng(1)
    model = onnx.parser.parse_model(TWO_ADDS)
    for name, gain in (("wa", 1.0), ("wb", 4.0), ("wc", 9.0)):  # three different ranges
        w = (rng.standard_normal((3, 3, 1, 1)) * gain).astype(np.float32)
        model.graph.initializer.append(numpy_helper.from_array(w, name))
    return model


def test_inputs_of_each_add_share_the_largest_scale_through_a_shared_tensor():
    model = _model()
    ranges = calibrate(model, calibration_set("image", (1, 3, 8, 8), None, None, count=2), TRT)
    qdq = quantize(model, ranges, TRT)
    before = qdq_activation_scales(model, qdq)
    assert len({before["a"], before["b"], before["c"]}) == 3
    shared, grown = share_input_scales(qdq, ("Add",))
    after = qdq_activation_scales(model, shared)
    top = max(before["a"], before["b"], before["c"])
    assert after["a"] == after["b"] == after["c"] == top and grown == 2
    assert after["s"] == before["s"] and after["t"] == before["t"] and after["y"] == before["y"]
    assert qdq_activation_scales(model, qdq) == before  # the input model is left as it was
    feeds = {"image": np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    assert run_reference(shared, feeds)[0].shape == (1, 3, 8, 8)


def test_no_ops_no_change():
    model = _model()
    ranges = calibrate(model, calibration_set("image", (1, 3, 8, 8), None, None, count=1), TRT)
    qdq = quantize(model, ranges, TRT)
    shared, grown = share_input_scales(qdq, ())
    assert grown == 0 and qdq_activation_scales(model, shared) == qdq_activation_scales(model, qdq)
