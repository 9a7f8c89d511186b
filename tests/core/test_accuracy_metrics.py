"""The mIoU arithmetic: hand-computed cases, and equality with the official Cityscapes evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from deploycc.core.accuracy import Agreement, Confusion, confusion, iou_per_class, mean_iou, pixel_accuracy
from deploycc.data.cityscapes import TRAIN_TO_LABEL_ID

# Ground truth and prediction of a 2 x 4 image, 3 classes, one ignored pixel:
#   gt   = 0 0 1 1 / 2 2 255 0      pred = 0 1 1 1 / 2 0 2 0
# pixels counted (gt != 255): 7. Confusion rows = gt, columns = pred:
#   gt 0: pred 0 at (0,0) (1,3); pred 1 at (0,1)        -> [2, 1, 0]
#   gt 1: pred 1 at (0,2) (0,3)                         -> [0, 2, 0]
#   gt 2: pred 2 at (1,0); pred 0 at (1,1)              -> [1, 0, 1]
GT = np.array([[0, 0, 1, 1], [2, 2, 255, 0]], np.uint8)
PRED = np.array([[0, 1, 1, 1], [2, 0, 2, 0]], np.uint8)


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(confusion(GT, PRED, 3), [[2, 1, 0], [0, 2, 0], [1, 0, 1]])


def test_iou_by_hand():
    # class 0: TP 2, FN 1 (pred 1), FP 1 (gt 2 predicted 0)  -> 2 / 4
    # class 1: TP 2, FN 0, FP 1 (gt 0 predicted 1)           -> 2 / 3
    # class 2: TP 1, FN 1, FP 0 (the ignored pixel's 2 does not count) -> 1 / 2
    m = confusion(GT, PRED, 3)
    np.testing.assert_allclose(iou_per_class(m), [2 / 4, 2 / 3, 1 / 2])
    assert mean_iou(m) == pytest.approx((2 / 4 + 2 / 3 + 1 / 2) / 3)
    assert pixel_accuracy(m) == pytest.approx(5 / 7)


def test_class_absent_from_both_is_not_scored_but_a_false_positive_class_scores_zero():
    gt = np.array([0, 0, 1, 1], np.uint8)
    pred = np.array([0, 0, 1, 3], np.uint8)  # class 2: absent from both; class 3: predicted, not in gt
    scores = Confusion(4)
    scores.add(gt, pred)
    iou = iou_per_class(scores.matrix)
    assert iou[0] == 1.0 and iou[1] == 0.5 and math.isnan(iou[2]) and iou[3] == 0.0
    s = scores.scores(["a", "b", "c", "d"])
    assert s["iou"]["c"] is None and s["classes_scored"] == 3
    assert s["miou"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_accumulates_over_the_split_not_per_image():
    # image A: one class-0 pixel right; image B: 1 of 3 class-1 pixels right, 2 predicted as 0
    conf = Confusion(2)
    conf.add(np.array([0], np.uint8), np.array([0], np.uint8))
    conf.add(np.array([1, 1, 1], np.uint8), np.array([1, 0, 0], np.uint8))
    # split: class 0 TP 1 FP 2 -> 1/3; class 1 TP 1 FN 2 -> 1/3; mean 1/3
    assert conf.scores()["miou"] == pytest.approx(1 / 3)
    # the mean of per-image mIoU would be (1 + (0 + 1/3) / 2) / 2 = 2/3: a different number
    assert conf.scores()["pixel_accuracy"] == pytest.approx(2 / 4)


def test_all_pixels_ignored_gives_no_score():
    conf = Confusion(3)
    conf.add(np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8))
    s = conf.scores()
    assert s["miou"] is None and s["pixel_accuracy"] is None and s["pixels"] == 0


def test_agreement():
    ref = np.array([[0, 0, 1, 1]], np.uint8)
    got = np.array([[0, 1, 1, 1]], np.uint8)
    a = Agreement(3)
    a.add(ref, got)
    s = a.scores()
    assert s["pixel_agreement"] == pytest.approx(3 / 4)
    assert s["miou"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # class 2 absent from both: not scored
    b = Agreement(3)
    b.add(ref, ref)
    assert b.scores() == {"pixel_agreement": 1.0, "miou": 1.0, "pixels": 4}


def _official(tmp_path, gts, preds) -> dict:
    """Run cityscapesscripts' own evaluation on labelId PNGs made from train-id arrays."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    to_label = np.zeros(256, np.uint8)
    to_label[: len(TRAIN_TO_LABEL_ID)] = TRAIN_TO_LABEL_ID
    to_label[255] = 0  # unlabeled: ignored in evaluation
    gt_files, pred_files = [], []
    for i, (g, p) in enumerate(zip(gts, preds)):
        gt_files.append(str(tmp_path / f"c_000000_{i:06d}_gtFine_labelIds.png"))
        pred_files.append(str(tmp_path / f"pred_{i}.png"))
        Image.fromarray(to_label[g]).save(gt_files[-1])
        Image.fromarray(to_label[p]).save(pred_files[-1])
    args = ev.args
    args.evalInstLevelScore, args.evalPixelAccuracy, args.quiet, args.JSONOutput = False, False, True, False
    return ev.evaluateImgLists(pred_files, gt_files, args)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 19))
def test_equals_the_official_cityscapes_evaluation(tmp_path_factory, seed, used):
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(2):
        g = rng.integers(0, used, (6, 10)).astype(np.uint8)
        g[rng.random(g.shape) < 0.15] = 255
        p = np.where(rng.random(g.shape) < 0.6, np.where(g == 255, 0, g), rng.integers(0, used, g.shape)).astype(
            np.uint8
        )
        gts.append(g)
        preds.append(p)
    official = _official(tmp_path_factory.mktemp("cs"), gts, preds)
    conf = Confusion(19)
    for g, p in zip(gts, preds):
        conf.add(g, p)
    ours = conf.scores(official_names())
    for name, value in official["classScores"].items():
        if name in ours["iou"]:
            assert (ours["iou"][name] is None and math.isnan(value)) or ours["iou"][name] == pytest.approx(value)
    assert ours["miou"] == pytest.approx(official["averageScoreClasses"])


def official_names():
    from deploycc.data.cityscapes import TRAIN_CLASSES

    return TRAIN_CLASSES


def test_rejects_mismatched_shapes_and_out_of_range_classes():
    with pytest.raises(ValueError):
        confusion(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 3)
    with pytest.raises(ValueError):
        confusion(np.full((2, 2), 5, np.uint8), np.zeros((2, 2), np.uint8), 3)
