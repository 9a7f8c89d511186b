"""Fixtures for the ``deploycc ci`` tests: a colour-segmentation model with a hand-computable mIoU.

The model is a 1x1 convolution with identity weights: its three logits are the normalized R, G, B
channels, so a pure red, green or blue pixel is predicted as class 0, 1 or 2 (ImageNet
normalization keeps the dominant channel the largest). The data is one 16x32 image, left half
red and right half green, whose label marks a quarter of the red half as class 2 (blue). By hand
(official arithmetic, accumulated over the split):

    class 0: TP = 3/4 R, FP = 1/4 R, FN = 0      -> IoU 0.75
    class 1: TP = G,     FP = 0,     FN = 0      -> IoU 1.0
    class 2: TP = 0,     FP = 0,     FN = 1/4 R  -> IoU 0.0
    mIoU = (0.75 + 1 + 0) / 3 = 0.58333...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import make_model
from PIL import Image

EXPECTED_MIOU = (0.75 + 1.0 + 0.0) / 3

COLOR_SEG = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,16,32] image) => (float[1,3,16,32] logits)
{ logits = Conv(image, w) }"""


@pytest.fixture(scope="session")
def ci_cache(tmp_path_factory) -> Path:
    """One build cache for the session, so that pairs built once are served from it afterwards."""
    return tmp_path_factory.mktemp("ci-cache")


@pytest.fixture(scope="session")
def project(tmp_path_factory) -> Path:
    """A folder with color.onnx and data/ (plain layout, 3 classes)."""
    root = tmp_path_factory.mktemp("ci-project")
    model = make_model(COLOR_SEG)
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1), "w"))
    onnx.save(model, root / "color.onnx")
    image = np.zeros((16, 32, 3), np.uint8)
    image[:, :16, 0] = 255
    image[:, 16:, 1] = 255
    label = np.zeros((16, 32), np.uint8)
    label[:, 16:] = 1
    label[:8, :8] = 2  # a quarter of the red half is labelled blue
    for sub in ("images", "labels"):
        (root / "data" / sub).mkdir(parents=True)
    Image.fromarray(image).save(root / "data" / "images" / "a.png")
    Image.fromarray(label).save(root / "data" / "labels" / "a.png")
    (root / "data" / "classes.txt").write_text("red\ngreen\nblue\n")
    return root


@pytest.fixture(scope="session")
def write_config():
    """``write_config(project, cache, body, name)``: a project file = common head + ``body``."""
    return _write_config


def _write_config(
    project: Path, cache: Path, body: str, name: str = "deploycc.toml", targets: str = '"cpu", "cpu-ort"'
) -> Path:
    head = f"""
targets = [{targets}]
[project]
name = "test"
output = "reports"
cache = "{cache}"
threads = 1
[[models]]
name = "color"
source = "color.onnx"
[data]
validation = "data"
[timing]
warmup = 1
min_repeats = 3
max_repeats = 5
max_seconds = 5
"""
    path = project / name
    path.write_text(head + body)
    return path
