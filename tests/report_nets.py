"""Small nets and a DLA-like test target for the report tests (shared by tests/report/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DILATED = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,32,32] image) => (float[1,5,32,32] logits, float[1,4,16,16] aux)
{ a = Conv<dilations=[2,2], pads=[2,2,2,2]>(image, w1)
  b = BatchNormalization(a, s, bb, m, v)
  c = Relu(b)
  d = Conv(c, w2)
  logits = Softmax<axis=1>(d)
  aux = Conv<dilations=[4,4], strides=[2,2], pads=[4,4,4,4]>(c, w3) }"""
DILATED_WEIGHTS = {
    "w1": (8, 3, 3, 3),
    "s": (8,),
    "bb": (8,),
    "m": (8,),
    "v": (8,),
    "w2": (5, 8, 1, 1),
    "w3": (4, 8, 3, 3),
}

TARGET = """name = "dla-like-test"
backend = "ort"
precision = "fp32"
passes = ["fold-bn", "rewrite-dilated"]
{verify}
[hardware]
peak_ops = {{ fp32 = 1e12 }}
dram_bandwidth = 50e9
onchip_memory = 1048576

[legality]
accelerator = "DLA"
fallback = "GPU"
native_dilated_conv = false
ops = ["Conv", "BatchNormalization", "Relu", "Pad", "Slice", "SpaceToDepth", "DepthToSpace", "Reshape",
       "Transpose", "Concat"]

[legality.conv]
kernel = [1, 5]
dilation = [1, 1]
"""


def target_file(folder: Path, verify: str = "") -> Path:
    path = folder / ("failing-test.toml" if verify else "dla-like-test.toml")
    path.write_text(TARGET.format(verify=verify))
    return path


def sample_profile() -> dict:
    """A per-layer profile in the shape ``deploycc bench --json`` gives it (``profile`` field)."""
    rng = np.random.default_rng(0)
    layers = [
        {
            "name": f"/units.{i}/conv{j}/Conv",
            "op_type": "Conv",
            "layer": f"layer {i}",
            "unit": "k3e1",
            "ms": float(rng.uniform(0.1, 2.0)),
        }
        for i in range(4)
        for j in range(2)
    ]
    layers.append({"name": "ReorderOutput", "op_type": "ReorderOutput", "layer": None, "unit": None, "ms": 0.05})
    return {"backend": "ort", "layers": layers}
