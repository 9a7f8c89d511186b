"""Segmentation accuracy with the arithmetic of the official Cityscapes evaluation.

One confusion matrix ``M[gt, pred]`` is accumulated over **all pixels of the split** (not a mean of
per-image scores); pixels whose ground truth is the ignore label (255) are left out entirely. For
each class c::

    TP = M[c, c]      FN = sum_j M[c, j] - TP      FP = sum_i M[i, c] - TP
    IoU_c = TP / (TP + FP + FN)

which is ``getIouScoreForLabel`` of ``cityscapesscripts`` (its FP sums only rows of evaluated
labels; ignored ground-truth pixels are not in our matrix at all, so the sums agree).

**A class absent from both the prediction and the ground truth of the whole split** has
TP + FP + FN = 0: its IoU is undefined (``None`` in JSON, NaN in arrays) and it is left out of
the mean, exactly as ``getScoreAverage`` does. A class that is predicted but absent from the
ground truth has IoU 0 and counts. mIoU is the mean over the defined classes; pixel accuracy is
trace / total over the non-ignored pixels.

*Agreement* compares two predictions on the same pixels (the artifact's against its FP32
reference's): the share of pixels with the same class, and the mIoU of the artifact's predictions
taking the reference's as ground truth (every pixel counts; nothing is ignored).

Written with ``np.bincount`` rather than a library (sklearn is not a dependency and its
``confusion_matrix`` is several times slower on millions of pixels).
"""

from __future__ import annotations

import math

import numpy as np

IGNORE = 255


def confusion(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore: int | None = IGNORE) -> np.ndarray:
    """``num_classes`` x ``num_classes`` int64 matrix, rows = ground truth, columns = prediction.

    Class maps hold values 0..255 (uint8 PNG labels). A 256-entry row table sends the ignore
    label to an extra row and any other value >= ``num_classes`` to a second one, so one gather
    and one ``bincount`` do the work (no masked copies); the extra rows are dropped or reported.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    if not 1 <= num_classes <= 255:
        raise ValueError(f"{num_classes} classes: class maps are 8-bit, so 1..255 classes (255 = ignore)")
    if gt.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    gt, pred = _as_uint8(gt.ravel()), _as_uint8(pred.ravel())
    if int(pred.max()) >= num_classes:
        raise ValueError(f"predicted class {int(pred.max())} >= {num_classes}")
    rows = np.full(256, num_classes + 1, dtype=np.intp)
    rows[:num_classes] = np.arange(num_classes)
    if ignore is not None:
        rows[ignore] = num_classes
    flat = rows[gt] * num_classes + pred
    counts = np.bincount(flat, minlength=(num_classes + 2) * num_classes).reshape(num_classes + 2, num_classes)
    if counts[num_classes + 1].any():
        raise ValueError(f"ground-truth class index >= {num_classes} (not the ignore label)")
    return counts[:num_classes]


def _as_uint8(values: np.ndarray) -> np.ndarray:
    if values.dtype == np.uint8:
        return values
    if values.size and (int(values.min()) < 0 or int(values.max()) > 255):
        raise ValueError("class maps must hold values 0..255")
    return values.astype(np.uint8)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU of every class; NaN where the class is absent from both prediction and ground truth."""
    m = matrix.astype(np.float64)
    tp = np.diag(m)
    denom = m.sum(axis=1) + m.sum(axis=0) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / denom, np.nan)


def mean_iou(matrix: np.ndarray) -> float:
    """Mean IoU over the classes with a defined IoU (NaN when none is defined)."""
    iou = iou_per_class(matrix)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else math.nan


def pixel_accuracy(matrix: np.ndarray) -> float:
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else math.nan


class Confusion:
    """A confusion matrix accumulated image by image."""

    def __init__(self, num_classes: int, ignore: int | None = IGNORE):
        self.num_classes = num_classes
        self.ignore = ignore
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        self.matrix += confusion(gt, pred, self.num_classes, self.ignore)

    def scores(self, class_names=None) -> dict:
        """mIoU, pixel accuracy, per-class IoU (None where undefined), pixel count."""
        names = list(class_names) if class_names else [str(i) for i in range(self.num_classes)]
        iou = iou_per_class(self.matrix)
        return {
            "miou": _num(mean_iou(self.matrix)),
            "pixel_accuracy": _num(pixel_accuracy(self.matrix)),
            "classes_scored": int(np.sum(~np.isnan(iou))),
            "pixels": int(self.matrix.sum()),
            "iou": {n: _num(v) for n, v in zip(names, iou)},
        }


class Agreement:
    """How far one prediction agrees with another (the artifact's with its reference's)."""

    def __init__(self, num_classes: int):
        self.confusion = Confusion(num_classes, ignore=None)

    def add(self, reference_pred: np.ndarray, pred: np.ndarray) -> None:
        self.confusion.add(reference_pred, pred)

    def scores(self) -> dict:
        m = self.confusion.matrix
        return {"pixel_agreement": _num(pixel_accuracy(m)), "miou": _num(mean_iou(m)), "pixels": int(m.sum())}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)
