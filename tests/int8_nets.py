"""A small image-input conv net for the INT8 and target tests (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import numpy as np
from helpers import make_model
from onnx import numpy_helper

# Two convs with a residual add, a 1x1 classifier and a x4 resize: enough structure for placement
# and sensitivity, small enough (1 x 3 x 64 x 128) that calibration takes well under a second.
SMALL_NET = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,64,128] image) => (float[1,4,128,256] logits)
{ c1 = Conv<pads=[1,1,1,1], strides=[2,2]>(image, w1, b1)
  r1 = Relu(c1)
  c2 = Conv<pads=[1,1,1,1]>(r1, w2, b2)
  r2 = Relu(c2)
  s = Add(r1, r2)
  c3 = Conv(s, w3, b3)
  logits = Resize<mode="linear", coordinate_transformation_mode="half_pixel">(c3, , scales)
}"""


def small_net():
    """The net with fixed-seed weights and node names conv0, relu1, conv2, relu3, add4, conv5, resize6."""
    model = make_model(
        SMALL_NET,
        {"w1": (8, 3, 3, 3), "b1": (8,), "w2": (8, 8, 3, 3), "b2": (8,), "w3": (4, 8, 1, 1), "b3": (4,)},
        seed=3,
    )
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "scales"))
    for i, node in enumerate(model.graph.node):
        node.name = f"{node.op_type.lower()}{i}"
    return model
