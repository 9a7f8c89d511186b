"""Calibration images for INT8 post-training quantization, with the model's own preprocessing.

A calibration set is a list of network inputs (1 x 3 x H x W float32) made from 8-bit RGB images
by the preprocessing the exported model records (``deploycc.preprocessing``: ``(x * scale - mean)
/ std``, RGB or BGR, NCHW, resized to the model's input H x W). It comes from:

* ``--calib-data FOLDER``: a dataset in Cityscapes or images/+labels/ layout (labels are not
  needed), or any folder of PNG/JPEG files, read in sorted order, the first ``count`` of them;
* no folder: **the documented default**, ``count`` procedural street scenes from
  ``deploycc data synth``'s generator with seed 0 (scene ``i`` = ``default_rng([0, i])``: road,
  sidewalks, buildings, sky, vegetation, cars, with perspective, texture, lighting and sensor noise),
  rendered at the model's input size, so activation ranges come from camera-like content rather than
  noise. It is recorded as such in the manifest; real images calibrate better and should be used
  for deployment. Held-out images for verification use seed 1.

``describe()`` records the source, the image names, the preprocessing and the sha256 of the
preprocessed tensors (the calibration-set part of the calibration cache key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deploycc.core.errors import UserError, first_line
from deploycc.data.io import open_image

IMAGENET = {
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "scale": 1 / 255,
    "layout": "NCHW",
    "color": "RGB",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
DEFAULT_SOURCE = "synthetic street scenes (deploycc data synth generator)"


@dataclass
class CalibrationSet:
    input_name: str
    tensors: list[np.ndarray]
    source: str
    names: list[str]
    preprocessing: dict
    preprocessing_source: str
    _sha: str | None = field(default=None, repr=False)

    def sha256(self) -> str:
        if self._sha is None:
            digest = hashlib.sha256()
            for t in self.tensors:
                digest.update(np.ascontiguousarray(t, dtype=np.float32).tobytes())
            self._sha = digest.hexdigest()
        return self._sha

    def feeds(self):
        return [{self.input_name: t} for t in self.tensors]

    def describe(self) -> dict:
        return {
            "source": self.source,
            "images": len(self.tensors),
            "names": self.names,
            "preprocessing": self.preprocessing,
            "preprocessing_source": self.preprocessing_source,
            "sha256": self.sha256(),
        }


def calibration_set(
    input_name: str,
    input_shape,
    preprocessing: dict | None,
    folder: str | Path | None = None,
    count: int = 8,
    seed: int = 0,
    offset: int = 0,
) -> CalibrationSet:
    """The calibration set for a model input of ``input_shape`` (N x 3 x H x W).

    ``offset`` skips that many images of a folder (held-out images for verification; a folder too
    small to hold any more falls back to its first images); synthetic images take ``seed`` instead.
    """
    if len(input_shape) != 4 or input_shape[1] != 3:
        raise UserError(
            f"input {input_name!r} has shape {list(input_shape)}; calibration from images needs N x 3 x H x W"
        )
    if count < 1:
        raise UserError(f"--calib-images {count}: needs at least one image")
    prep, prep_source = (
        (preprocessing, "model metadata (deploycc.preprocessing)")
        if preprocessing
        else (dict(IMAGENET), "default (ImageNet mean/std; the model records no preprocessing)")
    )
    check_preprocessing(prep)
    hw = (int(input_shape[2]), int(input_shape[3]))
    batch = int(input_shape[0])
    images: Iterable[np.ndarray]  # files are read one at a time, as the batches are made
    if folder is None:
        synthetic = synthetic_images(count * batch, hw, seed)
        images = synthetic
        names, source = [f"synth_{seed}_{i}" for i in range(len(synthetic))], f"{DEFAULT_SOURCE}, seed {seed}"
    else:
        files = image_files(Path(folder))
        paths = files[offset : offset + count * batch] or files[: count * batch]
        images, names, source = (_read(p) for p in paths), [p.name for p in paths], str(folder)
    tensors = [preprocess(img, prep, hw) for img in images]
    batches = [np.stack(tensors[i : i + batch]) for i in range(0, len(tensors) - batch + 1, batch)]
    if not batches:
        raise UserError(f"--calib-data {folder}: fewer images than the batch size {batch}")
    return CalibrationSet(input_name, batches, source, names, prep, prep_source)


def check_preprocessing(prep) -> None:
    """Refuse (one line) a ``deploycc.preprocessing`` record that cannot normalize an image: mean and
    std one or three finite numbers (std non-zero), scale finite and > 0, color RGB or BGR."""
    where = "model metadata deploycc.preprocessing"
    if not isinstance(prep, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(prep).__name__}")
    for key in ("mean", "std"):
        value = prep.get(key, IMAGENET[key])
        values = value if isinstance(value, list) else [value]
        if len(values) not in (1, 3) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values
        ):
            raise UserError(f"{where}: {key} {value!r} must be one or three finite numbers")
        if key == "std" and any(v == 0 for v in values):
            raise UserError(f"{where}: std {value!r} must not be 0")
    scale = prep.get("scale", 1 / 255)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale) or scale <= 0:
        raise UserError(f"{where}: scale {scale!r} must be a finite number > 0")
    if str(prep.get("color", "RGB")).upper() not in ("RGB", "BGR"):
        raise UserError(f"{where}: color {prep.get('color')!r} must be RGB or BGR")


def image_files(folder: Path) -> list[Path]:
    """The images of ``folder``: a dataset's images (Cityscapes / images+labels layout) or every PNG/JPEG."""
    if not folder.is_dir():
        raise UserError(f"--calib-data {folder}: no such folder")
    try:
        from deploycc.data import open_dataset

        return [s.image for s in open_dataset(folder, require_labels=False).samples]
    except UserError:
        pass  # not a dataset layout: a plain folder of images
    except ImportError:  # pragma: no cover - the data package ships with deploycc
        pass
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"--calib-data {folder}: no PNG or JPEG images in this folder")
    return files


def preprocess(image: np.ndarray, prep: dict, hw: tuple[int, int]) -> np.ndarray:
    """3 x H x W float32: bilinear resize to ``hw``, channel order, then (x * scale - mean) / std."""
    if image.shape[:2] != tuple(hw):
        image = np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BILINEAR))
    if prep.get("color", "RGB").upper() == "BGR":
        image = image[..., ::-1]
    mean = np.asarray(prep.get("mean", IMAGENET["mean"]), np.float32)
    std = np.asarray(prep.get("std", IMAGENET["std"]), np.float32)
    x = image.astype(np.float32) * np.float32(prep.get("scale", 1 / 255))
    return np.ascontiguousarray(((x - mean) / std).transpose(2, 0, 1), dtype=np.float32)


def synthetic_images(count: int, hw: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """``count`` H x W x 3 uint8 procedural street scenes (``deploycc data synth``'s generator)."""
    from deploycc.data.synth import scene

    return [scene(seed, i, hw[0], hw[1])[0] for i in range(count)]


def _read(path: Path) -> np.ndarray:
    try:
        with open_image(path, "image") as im:
            return np.asarray(im.convert("RGB"))
    except UserError as exc:
        raise UserError(f"--calib-data: {exc}") from None
    except Exception as exc:
        raise UserError(f"--calib-data: cannot read image {path}: {first_line(exc)}") from None
