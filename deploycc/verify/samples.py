"""A few labelled images as pictures for the verify report: the image, the artifact's prediction,
the ground truth and where the artifact disagrees with its reference.

The images are spread evenly over the split (first, last and between), so the report does not
show only the first city. Predictions are drawn at the label's resolution, as they are scored;
class colours are the Cityscapes palette (``deploycc.data.palette``), the ignore label black.
"""

from __future__ import annotations

import numpy as np

from deploycc.data import Dataset
from deploycc.data.io import preprocess, resize_nearest
from deploycc.data.palette import class_names, palette
from deploycc.report.overlay import disagreement, overlay
from deploycc.verify.evaluate import ModelIO, predict_classes


def sample_pictures(
    session, io: ModelIO, dataset: Dataset, prep: dict, reference=None, ref_io: ModelIO | None = None, count: int = 3
) -> dict:
    """``{"classes": [(name, rgb)...], "samples": [{"name", "image", "prediction", "ground_truth",
    "disagreement" (None without a reference), "disagreement_share"}...]}`` for up to ``count`` images."""
    names = list(dataset.class_names or class_names(io.num_classes))
    colors = palette(io.num_classes)
    picks = sorted(set(np.linspace(0, len(dataset.samples) - 1, min(count, len(dataset.samples))).round().astype(int)))
    samples, present = [], set()
    for i in picks:
        sample = dataset.samples[i]
        image, label = dataset.read(sample)
        x = preprocess(image, prep, io.hw)
        hw, shown = image.shape[:2], image  # a label has its image's size (checked by the dataset)
        pred = resize_nearest(predict_classes(session, io, [x])[0], hw)
        item = {
            "name": sample.name,
            "image": shown,
            "prediction": overlay(shown, pred, colors),
            "ground_truth": None if label is None else overlay(shown, label, colors),
            "disagreement": None,
            "disagreement_share": None,
        }
        present |= set(np.unique(pred).tolist()) | (set(np.unique(label).tolist()) if label is not None else set())
        if reference is not None:
            assert ref_io is not None, "a reference comes with its ModelIO"
            ref = resize_nearest(predict_classes(reference, ref_io, [x])[0], hw)
            item["disagreement"] = disagreement(shown, pred != ref)
            item["disagreement_share"] = float(np.mean(pred != ref))
        samples.append(item)
    legend = [(names[c], tuple(int(v) for v in colors[c])) for c in sorted(present) if c < len(names)]
    return {"classes": legend, "samples": samples}
