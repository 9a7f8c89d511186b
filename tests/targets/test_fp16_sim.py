"""The FP16 simulation keeps a resize's scales in float32, so the model's shapes stay as declared."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from deploycc.targets.fp16_sim import fp16_model

# 3 -> 98 columns needs the float32 scale 98/3 = 32.666668 (floor(3 * 32.666668) = 98); its float16
# rounding 32.66 gives 97, and the Mul with a 98-wide tensor no longer meets (lat_small's decoder at
# 1x3x784x1568: its 49x98 map pooled to 1x3 and resized back).
AS_CONSTANT = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,2,1,3] a, float[1,2,1,98] b) => (float[1,2,1,98] y)
{ s = Constant<value = float[4] {1.0, 1.0, 1.0, 32.666668}>()
  r = Resize<mode="linear", coordinate_transformation_mode="half_pixel">(a, , s)
  y = Mul(r, b)
}"""
AS_INITIALIZER = AS_CONSTANT.replace(
    "{ s = Constant<value = float[4] {1.0, 1.0, 1.0, 32.666668}>()\n", "<float[4] s = {1.0, 1.0, 1.0, 32.666668}>\n{"
)


@pytest.mark.parametrize("text", [AS_CONSTANT, AS_INITIALIZER], ids=["constant", "initializer"])
def test_resize_scales_stay_float32_and_the_shapes_meet(text):
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model, full_check=True)
    half = fp16_model(model)
    onnx.checker.check_model(half)
    feeds = {"a": np.ones((1, 2, 1, 3), np.float32), "b": np.full((1, 2, 1, 98), 2.0, np.float32)}
    (y,) = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert y.shape == (1, 2, 1, 98) and np.all(y == 2.0)
    resize = next(n for n in half.graph.node if n.op_type == "Resize")
    scales = {t.name: numpy_helper.to_array(t) for t in half.graph.initializer}[resize.input[2]]
    assert scales.dtype == np.float32 and scales[3] == np.float32(32.666668)


def test_everything_else_is_still_float16():
    half = fp16_model(onnx.parser.parse_model(AS_CONSTANT))
    mul = next(n for n in half.graph.node if n.op_type == "Mul")
    types = {v.name: v.type.tensor_type.elem_type for v in half.graph.value_info}
    assert types.get(mul.output[0]) == onnx.TensorProto.FLOAT16
