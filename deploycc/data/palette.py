"""Colours and names for class maps: the Cityscapes palette of the 19 train classes.

A model with 19 output channels is taken to predict the Cityscapes train classes (the layout every
deploycc dataset and the bundled nets use): its classes get their Cityscapes names and the
official colours of ``cityscapesscripts.helpers.labels``. Any other class count gets neutral names
(``class 7``) and colours: the Cityscapes ones for the first 19 indices, then evenly spread hues,
so a colour never repeats. The ignore label (255) is drawn black.
"""

from __future__ import annotations

import colorsys

import numpy as np
from cityscapesscripts.helpers.labels import labels as _LABELS

from .cityscapes import IGNORE, TRAIN_CLASSES

#: RGB colour of each Cityscapes train class, index = trainId
TRAIN_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    tuple(lab.color)
    for lab in sorted((lab for lab in _LABELS if 0 <= lab.trainId < IGNORE), key=lambda lab: lab.trainId)
)


def class_names(num_classes: int) -> list[str]:
    """Cityscapes names for a 19-class model; ``class i`` otherwise."""
    if num_classes == len(TRAIN_CLASSES):
        return list(TRAIN_CLASSES)
    return [f"class {i}" for i in range(num_classes)]


def palette(num_classes: int) -> np.ndarray:
    """``num_classes`` x 3 uint8 RGB colours, one per class index, all distinct."""
    colors = list(TRAIN_COLORS[:num_classes])
    extra = num_classes - len(colors)
    for i in range(extra):  # hues spread by the golden ratio: neighbours stay far apart
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.75, 0.9)
        colors.append((int(255 * r), int(255 * g), int(255 * b)))
    return np.asarray(colors, dtype=np.uint8).reshape(num_classes, 3)


def colorize(class_map: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """H x W class indices -> H x W x 3 uint8 RGB; the ignore label and unknown indices are black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(colors)] = colors
    return table[class_map.astype(np.uint8, copy=False)]
