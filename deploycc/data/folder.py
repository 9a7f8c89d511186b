"""The plain layout: a folder of images and a folder of label PNGs with the same names.

::

    ROOT/images/<name>.png|.jpg|.jpeg
    ROOT/labels/<name>.png          # one channel, value = class index, 255 = ignore
    ROOT/classes.txt                # optional: one class name per line (sets the class count)

Label values are class indices directly (trainIds, as a network predicts them), not Cityscapes
labelIds. Without ``classes.txt`` the class count is the model's; every label value must then be
below it or 255, which the evaluation checks per image.
"""

from __future__ import annotations

from pathlib import Path

from deploycc.core.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def is_folder_layout(root: Path) -> bool:
    return (root / "images").is_dir()


def class_names(root: Path) -> tuple[str, ...] | None:
    path = root / "classes.txt"
    if not path.is_file():
        return None
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not names or len(names) > 255:
        raise UserError(f"{path}: needs 1 to 255 class names, one per line (found {len(names)})")
    return names


def find_pairs(root: Path, require_labels: bool = True) -> list[tuple[str, Path, Path | None]]:
    """(name, image, label) for every image under ``root/images``, sorted by name."""
    images = sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise UserError(f"{root / 'images'}: no images ({', '.join(IMAGE_EXTENSIONS)}); empty dataset")
    stems = [p.stem for p in images]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise UserError(f"{root / 'images'}: several images named {twice[0]!r} (e.g. .png and .jpg) share one label")
    pairs: list[tuple[str, Path, Path | None]] = []
    for image in images:
        label = root / "labels" / f"{image.stem}.png"
        labelled = label.is_file()
        if not labelled and require_labels:
            raise UserError(f"{image}: image without a label (expected {label})")
        pairs.append((image.stem, image, label if labelled else None))
    return pairs
