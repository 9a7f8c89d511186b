"""Labelled image data for accuracy verification, calibration and training.

``open_dataset(path)`` recognises the layout of ``path``:

* **Cityscapes** (``leftImg8bit/`` present): images and ``*_gtFine_labelIds.png`` of one split
  (default ``val``), labelIds mapped to the 19 train classes by the official table, 255 ignored.
* **plain folder** (``images/`` present): ``labels/<name>.png`` beside each image, values already
  class indices (255 ignored); an optional ``classes.txt`` names the classes.

A dataset is only a list of file pairs; images are decoded when read, one at a time, so a long
split streams in constant memory. Every defect (image without label, label of another size,
label value outside the table, empty folder) raises a ``UserError`` naming the file.

May import ``deploycc.core`` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploycc.core.errors import UserError

from . import cityscapes, folder
from .io import check_label_range, check_same_size, read_image, read_label

__all__ = ["IGNORE", "Dataset", "Sample", "open_dataset"]

IGNORE = cityscapes.IGNORE


@dataclass(frozen=True)
class Sample:
    name: str
    image: Path
    label: Path | None


@dataclass(frozen=True)
class Dataset:
    root: Path
    layout: str  # "cityscapes" | "folder"
    split: str | None
    samples: tuple[Sample, ...]
    class_names: tuple[str, ...] | None  # None: the model's output decides the class count

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names else None

    def first(self, count: int | None) -> Dataset:
        """The dataset cut to its first ``count`` samples (None or 0: all of them)."""
        return dataclasses.replace(self, samples=self.samples[:count]) if count else self

    @property
    def labelled(self) -> bool:
        return all(s.label is not None for s in self.samples)

    def read(self, sample: Sample) -> tuple[np.ndarray, np.ndarray | None]:
        """(H x W x 3 uint8 RGB image, H x W uint8 class indices with 255 ignored, or None)."""
        image = read_image(sample.image)
        if sample.label is None:
            return image, None
        raw = read_label(sample.label)
        check_same_size(image, raw, sample.image, sample.label)
        if self.layout == "cityscapes":
            return image, cityscapes.to_train_ids(raw, sample.label)
        if self.num_classes:
            check_label_range(raw, self.num_classes, sample.label)
        return image, raw

    def describe(self) -> dict:
        return {
            "path": str(self.root),
            "layout": self.layout,
            "split": self.split,
            "images": len(self.samples),
            "classes": self.num_classes,
        }


def open_dataset(path: str | Path, split: str | None = None, require_labels: bool = True) -> Dataset:
    """The dataset at ``path`` (layout detected); ``split`` applies to the Cityscapes layout."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root}: no such data folder")
    names: tuple[str, ...] | None
    if cityscapes.is_cityscapes(root):
        split = split or "val"
        pairs = cityscapes.find_pairs(root, split, require_labels)
        names, layout = cityscapes.TRAIN_CLASSES, "cityscapes"
    elif folder.is_folder_layout(root):
        if split:
            raise UserError(f"--split {split}: {root} is a plain images/ + labels/ folder without splits")
        pairs = folder.find_pairs(root, require_labels)
        names, layout = folder.class_names(root), "folder"
    else:
        raise UserError(
            f"{root}: not a dataset: expected leftImg8bit/ + gtFine/ (Cityscapes layout) "
            f"or images/ + labels/ (plain layout)"
        )
    return Dataset(root, layout, split, tuple(Sample(*p) for p in pairs), names)
