"""``deploycc predict``: run an artifact on ordinary photos; class maps, overlays, disagreement maps.

Each photo, whatever its size, is resized (bilinear) to the artifact's input with the
preprocessing its manifest records, as ``verify`` does, and the argmax class map is resized back
(nearest) to the photo's own size. Per photo ``STEM``, the output folder gets:

* ``STEM_trainIds.png``: the class map, one 8-bit channel of class indices (trainIds for a
  Cityscapes model), at the photo's size, for tools;
* ``STEM_overlay.png``: the photo under the class colours (Cityscapes palette) with a legend of
  the classes present and their share of the pixels;
* ``STEM_disagreement.png`` (with a reference): the pixels where artifact and reference predict a
  different class, in red;

and ``predictions.json`` lists every photo with its figures. Every photo is checked (readable,
three colour channels) before anything runs; the files are written into a staging folder beside
the output folder and swapped in for it only when every photo succeeded, so a failure leaves the
output folder as it was. ``predictions.json`` lists every file with its sha256: an existing folder
is replaced only while it holds exactly those files (``deploycc.core.outputs``), else only with
``--overwrite``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from deploycc.core.cache import folder_listing
from deploycc.core.errors import UserError
from deploycc.core.outputs import (
    clean_stale_staging,
    manifest_problem,
    remove_path,
    replace_folder,
    staging_path,
)
from deploycc.data.io import open_image, preprocess, resize_nearest
from deploycc.data.palette import class_names, palette
from deploycc.report.overlay import (
    DISAGREE,
    contrasting_colors,
    disagreement,
    overlay,
    picture_with_legend,
    save_picture,
)
from deploycc.verify.evaluate import check_reference, model_io, predict_classes, resolve_preprocessing

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
PREDICTIONS = "predictions.json"
RESOLUTION = "photo resized (bilinear) to the model input; class map resized back (nearest) to the photo"


def photo_list(items: list[Path]) -> list[Path]:
    """The photos named on the command line; a folder stands for the photos directly inside it.
    Two photos whose outputs would share a name are refused."""
    photos: list[Path] = []
    for item in items:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
            if not found:
                raise UserError(f"{item}: folder holds no photos ({', '.join(PHOTO_SUFFIXES)})")
            photos += found
        elif item.is_file():
            photos.append(item)
        else:
            raise UserError(f"{item}: no such image file")
    seen: dict[str, Path] = {}
    for p in photos:
        if p.stem in seen:
            raise UserError(f"{p}: same name as {seen[p.stem]}; their outputs ({p.stem}_*.png) would collide")
        seen[p.stem] = p
    return photos


def check_photo(path: Path) -> None:
    """Readable header and three colour channels, without decoding the pixels."""
    with _opened(path, load=False) as img:
        _check_mode(img, path)


def read_photo(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB pixels of ``path`` (one-line error when unreadable or not colour)."""
    with _opened(path, load=True) as img:
        _check_mode(img, path)
        if img.mode == "RGBA":
            alpha = np.asarray(img.getchannel("A"))
            if alpha.min() < 255:
                raise UserError(f"{path}: image has transparent pixels (RGBA); give an opaque RGB photo")
        # phone cameras store the sensor's orientation in EXIF; the photo a person sees is the rotated one
        return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))


class _opened:
    def __init__(self, path: Path, load: bool):
        self.path, self.load = path, load
        self.img: Image.Image | None = None

    def __enter__(self) -> Image.Image:
        self.img = open_image(self.path, "image", self.load)
        return self.img

    def __exit__(self, *exc):
        if self.img is not None:  # always, after __enter__ returned
            self.img.close()


_CHANNELS = {
    "1": 1,
    "L": 1,
    "I": 1,
    "F": 1,
    "I;16": 1,
    "I;16B": 1,
    "I;16L": 1,
    "LA": 2,
    "La": 2,
    "PA": 2,
    "CMYK": 4,
    "RGBa": 4,
    "LAB": 3,
    "HSV": 3,
}


def _check_mode(img: Image.Image, path: Path) -> None:
    """RGB, YCbCr (decoded as RGB), palette and opaque RGBA photos are colour photos; the rest not."""
    if img.mode in ("RGB", "P", "RGBA", "YCbCr"):
        return
    channels = _CHANNELS.get(img.mode, len(img.getbands()))
    raise UserError(f"{path}: image has {channels} channel(s) (mode {img.mode}); the model takes 3-channel RGB photos")


@dataclass
class Predictor:
    """An artifact's Session (and optionally a reference's) ready to label photos."""

    session: object
    manifest: dict
    where: str
    reference: object = None
    ref_where: str = "reference"

    def __post_init__(self):
        self.io = model_io(self.session, self.where)
        self.ref_io = None
        if self.reference is not None:
            self.ref_io = model_io(self.reference, self.ref_where)
            check_reference(self.io, self.ref_io, self.ref_where)
        self.prep, self.prep_source = resolve_preprocessing(self.manifest.get("preprocessing"))
        self.names = class_names(self.io.num_classes)
        self.colors = palette(self.io.num_classes)

    def classes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Class maps of artifact and reference (None without one) at the photo's size."""
        x = preprocess(image, self.prep, self.io.hw)
        hw = image.shape[:2]
        pred = resize_nearest(predict_classes(self.session, self.io, [x])[0], hw)
        ref = None
        if self.reference is not None:
            assert self.ref_io is not None, "a reference comes with its ModelIO"
            ref = resize_nearest(predict_classes(self.reference, self.ref_io, [x])[0], hw)
        return pred, ref

    def describe(self) -> dict:
        return {
            "input": list(self.io.input.shape),
            "classes": self.io.num_classes,
            "preprocessing": {**self.prep, "source": self.prep_source},
            "resolution": RESOLUTION,
        }


def class_shares(class_map: np.ndarray, names: list[str]) -> list[dict]:
    """Classes present in ``class_map``, largest share first."""
    counts = np.bincount(class_map.ravel(), minlength=len(names))[: len(names)]
    order = np.argsort(-counts, kind="stable")
    total = class_map.size
    return [{"class": int(c), "name": names[c], "share": float(counts[c] / total)} for c in order if counts[c]]


# A class under this share of the photo is too small to see or to find by its colour: the legend
# counts such classes in one line instead of listing each at "0.0 %" (predictions.json lists all).
MIN_LEGEND_SHARE = 0.001


def _rgb(colour) -> tuple[int, int, int]:
    return int(colour[0]), int(colour[1]), int(colour[2])


def legend_entries(shares: list[dict], colors: np.ndarray) -> list[tuple[str, tuple[int, int, int]]]:
    """(label, colour) per class of at least ``MIN_LEGEND_SHARE``, largest first, and one line for the rest."""
    shown = [s for s in shares if s["share"] >= MIN_LEGEND_SHARE]
    rest = [s for s in shares if s["share"] < MIN_LEGEND_SHARE]
    out = [(f"{s['name']} {100 * s['share']:.1f} %", _rgb(colors[s["class"]])) for s in shown]
    if rest:
        out.append((f"+{len(rest)} class(es) under {100 * MIN_LEGEND_SHARE:g} %", (255, 255, 255)))
    return out


def write_photo(
    pred: Predictor, photo: Path, image: np.ndarray, classes: np.ndarray, ref: np.ndarray | None, folder: Path
) -> dict:
    """The class map, the overlay and (with a reference) the disagreement map of one photo."""
    stem = photo.stem
    files = {"classes": f"{stem}_trainIds.png", "overlay": f"{stem}_overlay.png"}
    Image.fromarray(classes, mode="L").save(folder / files["classes"])
    shares = class_shares(classes, pred.names)
    colors = contrasting_colors(image, classes, pred.colors)
    save_picture(
        picture_with_legend(
            overlay(image, classes, colors), legend_entries(shares, colors), "classes (share of pixels)"
        ),
        folder / files["overlay"],
    )
    record: dict[str, Any] = {
        "photo": str(photo),
        "size": [int(image.shape[1]), int(image.shape[0])],
        "classes": shares,
    }
    if ref is not None:
        differ = classes != ref
        share = float(differ.mean())
        files["disagreement"] = f"{stem}_disagreement.png"
        legend = [(f"artifact ≠ reference: {100 * share:.2f} %", DISAGREE), ("same class", (150, 150, 150))]
        save_picture(
            picture_with_legend(disagreement(image, differ), legend, "disagreement"), folder / files["disagreement"]
        )
        record["disagreement"] = share
    record["files"] = files
    return record


def predict_photos(pred: Predictor, photos: list[Path], out: Path, progress=None) -> dict:
    """Label every photo into ``out`` (staged beside it, moved in when all succeeded). ``out`` has
    passed ``core.outputs.check_output``: absent, a folder of deploycc's (``predictions.json``
    lists every file with its sha256), or the user asked to overwrite."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--output {out}: exists and is not a folder")
    for photo in photos:
        check_photo(photo)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(out.parent)
    stage = staging_path(out)
    stage.mkdir()
    try:
        records = []
        for photo in photos:
            image = read_photo(photo)
            classes, ref = pred.classes(image)
            records.append(write_photo(pred, photo, image, classes, ref, stage))
            if progress:
                progress(1)
        summary = {"artifact": pred.where, **pred.describe(), "photos": records}
        listing = {"files": folder_listing(stage)}  # what makes the folder provably deploycc's
        (stage / PREDICTIONS).write_text(json.dumps({**summary, **listing}, indent=2) + "\n")
        replace_folder(stage, out)
    finally:
        remove_path(stage)
    return summary


def predictions_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a ``deploycc predict`` output (None: it is one, intact)."""
    return manifest_problem(folder, PREDICTIONS)
