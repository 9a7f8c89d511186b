"""The Cityscapes folder layout and the official label table.

Layout (as distributed by cityscapes-dataset.com)::

    ROOT/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    ROOT/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Ground truth is read as *labelIds* (0..33) and mapped to the 19 *train* classes with the table of
``cityscapesscripts.helpers.labels`` (the official one); every labelId whose trainId is 255 or -1
(unlabeled, ego vehicle, parking, guard rail, license plate, ...) becomes 255, the ignore label.
A value that is not a labelId of the table is an error, not a silent ignore.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as _LABELS

from deploycc.core.errors import UserError

IGNORE = 255
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"

#: names of the 19 train classes, index = trainId
TRAIN_CLASSES: tuple[str, ...] = tuple(
    lab.name for lab in sorted((lab for lab in _LABELS if 0 <= lab.trainId < IGNORE), key=lambda lab: lab.trainId)
)
#: labelId of each train class, index = trainId (what the official evaluation compares)
TRAIN_TO_LABEL_ID: tuple[int, ...] = tuple(
    lab.id for lab in sorted((lab for lab in _LABELS if 0 <= lab.trainId < IGNORE), key=lambda lab: lab.trainId)
)
#: labelId name -> labelId, for writers (the synthetic scene generator)
LABEL_IDS: dict[str, int] = {lab.name: lab.id for lab in _LABELS if lab.id >= 0}


def _label_lut() -> np.ndarray:
    """256-entry table labelId -> trainId (255 ignored); -1 marks values absent from the table."""
    lut = np.full(256, -1, dtype=np.int16)
    for lab in _LABELS:
        if lab.id >= 0:
            lut[lab.id] = lab.trainId if 0 <= lab.trainId < IGNORE else IGNORE
    return lut


LABEL_TO_TRAIN = _label_lut()


def to_train_ids(label_ids: np.ndarray, where: Path | str) -> np.ndarray:
    """Map a labelId image to trainIds (uint8, 255 ignored); unknown values name the file."""
    mapped = LABEL_TO_TRAIN[label_ids]
    if mapped.min(initial=0) < 0:
        bad = np.unique(label_ids[mapped < 0])
        raise UserError(
            f"{where}: label value(s) {_list(bad)} are not Cityscapes labelIds "
            f"(valid: 0..{int(np.flatnonzero(LABEL_TO_TRAIN >= 0).max())}, see cityscapesscripts labels)"
        )
    return mapped.astype(np.uint8)


def _list(values: np.ndarray, show: int = 5) -> str:
    text = ", ".join(str(int(v)) for v in values[:show])
    return text + (f" (+{len(values) - show} more)" if len(values) > show else "")


def is_cityscapes(root: Path) -> bool:
    return (root / "leftImg8bit").is_dir()


def splits(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "leftImg8bit").iterdir() if p.is_dir())


def find_pairs(root: Path, split: str, require_labels: bool = True) -> list[tuple[str, Path, Path | None]]:
    """(name, image, label) for every image of ``split``, sorted by city then name."""
    image_dir = root / "leftImg8bit" / split
    if not image_dir.is_dir():
        raise UserError(
            f"{root}: Cityscapes layout without split {split!r} "
            f"(leftImg8bit has: {', '.join(splits(root)) or 'nothing'}); choose one with --split"
        )
    pairs: list[tuple[str, Path, Path | None]] = []
    for image in sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}")):
        stem = image.name[: -len(IMAGE_SUFFIX)]
        label = root / "gtFine" / split / image.parent.name / f"{stem}{LABEL_SUFFIX}"
        labelled = label.is_file()
        if not labelled and require_labels:
            raise UserError(f"{image}: image without a label (expected {label})")
        pairs.append((f"{image.parent.name}/{stem}", image, label if labelled else None))
    if not pairs:
        raise UserError(f"{image_dir}: no images (*/*{IMAGE_SUFFIX}); empty dataset")
    return pairs
