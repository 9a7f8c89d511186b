"""A golden segmentation model whose predictions are known, and labelled data for it.

The model is one 1x1 convolution: logit_k = k * x_R - k^2 * D / 2 with x_R = R / 255 (its
preprocessing: scale 1/255, mean 0, std 1), whose argmax is the class k nearest to x_R / D. An
image whose red channel is 12 * k everywhere class k is meant is therefore predicted exactly, so
every score of ``deploycc verify`` on data built here can be worked out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
from onnx import numpy_helper
from PIL import Image

from deploycc.data.cityscapes import TRAIN_TO_LABEL_ID

H, W, STEP = 32, 64, 12
PREP = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "scale": 1 / 255, "layout": "NCHW", "color": "RGB"}


def seg_model(classes: int = 19, drop_class: int | None = None, batch: int = 1) -> onnx.ModelProto:
    """The golden model; ``drop_class`` is never predicted (its bias is very negative)."""
    text = f"""<ir_version: 8, opset_import: ["" : 17]>
    g (float[{batch},3,{H},{W}] image) => (float[{batch},{classes},{H},{W}] logits)
    {{ logits = Conv(image, w, b) }}"""
    model = onnx.parser.parse_model(text)
    k = np.arange(classes, dtype=np.float32)
    w = np.zeros((classes, 3, 1, 1), np.float32)
    w[:, 0, 0, 0] = k
    b = -k * k * (STEP / 255) / 2
    if drop_class is not None:
        b[drop_class] = -100.0
    model.graph.initializer.extend(
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b.astype(np.float32), "b")]
    )
    model.metadata_props.add(key="deploycc.preprocessing", value=json.dumps(PREP))
    return model


def class_image(classes_map: np.ndarray, rng) -> np.ndarray:
    """RGB image whose red channel encodes ``classes_map`` (values 0..18); G and B random."""
    img = rng.integers(0, 256, (*classes_map.shape, 3)).astype(np.uint8)
    img[..., 0] = (classes_map.astype(np.int64) * STEP).astype(np.uint8)
    return img


def blocks(rng, classes: int = 19) -> np.ndarray:
    """A H x W class map of 4 x 8 blocks of random classes."""
    return np.kron(rng.integers(0, classes, (H // 8, W // 8)), np.ones((8, 8), np.int64)).astype(np.uint8)


def write_folder(root: Path, n: int = 3, seed: int = 0, wrong: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """images/ + labels/ with train ids; ``wrong`` label pixels per image disagree with the image."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    pairs = []
    for i in range(n):
        cls = blocks(rng)
        label = cls.copy()
        label[0, :wrong] = (label[0, :wrong] + 1) % 19
        label[-1, :3] = 255
        Image.fromarray(class_image(cls, rng)).save(root / "images" / f"img{i}.png")
        Image.fromarray(label).save(root / "labels" / f"img{i}.png")
        pairs.append((cls, label))
    return pairs


def write_cityscapes(root: Path, n: int = 2, seed: int = 1, split: str = "val") -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lut = np.asarray(TRAIN_TO_LABEL_ID, np.uint8)
    img_dir, gt_dir = root / "leftImg8bit" / split / "city", root / "gtFine" / split / "city"
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    maps = []
    for i in range(n):
        cls = blocks(rng)
        ids = lut[cls]
        ids[:2, :2] = 1  # ego vehicle: ignored
        Image.fromarray(class_image(cls, rng)).save(img_dir / f"city_000000_{i:06d}_leftImg8bit.png")
        Image.fromarray(ids).save(gt_dir / f"city_000000_{i:06d}_gtFine_labelIds.png")
        maps.append(cls)
    return maps
