"""Run a segmentation Session over a labelled dataset: mIoU, and agreement with a reference.

Resolution policy: each image is resized (bilinear) to the model's input size when it differs,
and the prediction (argmax of the logits) is resized back (nearest) to the label's own size, so
scores are always computed at the ground truth's full resolution, as the official Cityscapes
evaluation does. Agreement with the reference is computed at the model's output resolution (both
networks see the same input; no resampling between them).

Images are decoded and preprocessed one background thread ahead of inference (bounded queue), so
memory stays flat however long the split is; the report separates the time spent in the artifact,
in the reference, waiting for data and in the metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploycc.core.accuracy import Agreement, Confusion
from deploycc.core.errors import UserError
from deploycc.core.loader import graph_inputs
from deploycc.core.numerics import TensorSpec, reference_session, value_specs
from deploycc.data import Dataset
from deploycc.data.io import IMAGENET, check_label_range, prefetch, preprocess, resize_nearest
from deploycc.targets.backend import Session


@dataclass(frozen=True)
class ModelIO:
    """The image input and logits output of a segmentation Session."""

    input: TensorSpec
    output_index: int
    num_classes: int

    @property
    def batch(self) -> int:
        return int(self.input.shape[0])

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.input.shape[2]), int(self.input.shape[3])


def model_io(session, where: str) -> ModelIO:
    """Check that ``session`` takes one N x 3 x H x W image and returns N x C x h x w logits."""
    if len(session.inputs) != 1:
        raise UserError(
            f"{where}: takes {len(session.inputs)} inputs {[s.name for s in session.inputs]}; "
            "accuracy verification needs a single image input"
        )
    spec = session.inputs[0]
    if len(spec.shape) != 4 or spec.shape[1] != 3 or min(spec.shape) < 1:
        raise UserError(f"{where}: input {spec.name!r} has shape {list(spec.shape)}; expected N x 3 x H x W")
    names = [s.name for s in session.outputs]
    index = names.index("logits") if "logits" in names else 0
    out = session.outputs[index]
    if len(out.shape) != 4 or out.shape[0] != spec.shape[0]:
        raise UserError(
            f"{where}: output {out.name!r} has shape {list(out.shape)}; expected "
            f"{spec.shape[0]} x classes x H x W logits"
        )
    return ModelIO(spec, index, int(out.shape[1]))


def check_classes(io: ModelIO, dataset: Dataset, where: str) -> None:
    if dataset.num_classes and io.num_classes != dataset.num_classes:
        raise UserError(
            f"{where}: output has {io.num_classes} channels but the {dataset.layout} data at "
            f"{dataset.root} has {dataset.num_classes} classes"
        )


def check_reference(io: ModelIO, ref_io: ModelIO, where: str) -> None:
    if tuple(ref_io.input.shape) != tuple(io.input.shape) or ref_io.num_classes != io.num_classes:
        raise UserError(
            f"{where}: reference takes {list(ref_io.input.shape)} and gives {ref_io.num_classes} "
            f"classes; the artifact takes {list(io.input.shape)} and gives {io.num_classes}"
        )


class OnnxReference(Session):
    """An ONNX model on ONNX Runtime: with all graph optimizations for the image loop (FP32 either
    way, and fast); with none for numerics (``strict_run``: the oracle of ``deploycc.core.numerics``)."""

    def __init__(self, model, threads: int = 0, source_path: Path | None = None):
        import onnxruntime as ort

        self.model, self.source_path = model, source_path
        self._strict: ort.InferenceSession | None = None  # made on the first strict_run
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = threads
        self._sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        self.inputs = value_specs(graph_inputs(model))
        self.outputs = value_specs(model.graph.output)

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(None, {s.name: a for s, a in zip(self.inputs, arrays)})

    def strict_run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._strict is None:
            self._strict = reference_session(self.model)
        return self._strict.run(None, {s.name: a for s, a in zip(self.inputs, self.ordered_feeds(feeds))})


def resolve_preprocessing(manifest_prep: dict | None) -> tuple[dict, str]:
    """The artifact's recorded preprocessing, or ImageNet normalization (reported as a default)."""
    if manifest_prep:
        return manifest_prep, "manifest"
    return dict(IMAGENET), "default (ImageNet mean/std; the artifact records no preprocessing)"


class _Timer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def add(self, key: str, start: float) -> float:
        now = time.perf_counter()
        self.seconds[key] = self.seconds.get(key, 0.0) + now - start
        return now


def evaluate_artifact(
    session, manifest: dict, dataset: Dataset, where: str, reference=None, ref_where: str = "reference", progress=None
) -> tuple[dict, ModelIO, dict, str]:
    """Check that ``session`` (and ``reference``) fit ``dataset``, then :func:`evaluate` it with the
    preprocessing its manifest records; returns (scores, its ModelIO, preprocessing, where that
    preprocessing came from). ``deploycc verify`` and ``deploycc ci`` both score through here."""
    io = model_io(session, where)
    check_classes(io, dataset, where)
    ref_io = None
    if reference is not None:
        ref_io = model_io(reference, ref_where)
        check_reference(io, ref_io, ref_where)
    prep, prep_source = resolve_preprocessing(manifest.get("preprocessing"))
    return evaluate(session, io, dataset, prep, reference, ref_io, progress), io, prep, prep_source


def evaluate(
    session,
    io: ModelIO,
    dataset: Dataset,
    prep: dict,
    reference=None,
    ref_io: ModelIO | None = None,
    progress=None,
    depth: int = 2,
) -> dict:
    """Scores of ``session`` on ``dataset`` (and of ``reference``, with agreement, when given)."""
    names = dataset.class_names or [str(i) for i in range(io.num_classes)]
    conf = Confusion(io.num_classes) if dataset.labelled else None
    ref_conf = Confusion(io.num_classes) if reference is not None and conf is not None else None
    agree = Agreement(io.num_classes) if reference is not None else None
    timer, images = _Timer(), 0
    start = time.perf_counter()

    def load(sample):
        t0 = time.perf_counter()
        image, label = dataset.read(sample)
        x = preprocess(image, prep, io.hw)
        return sample, x, label, time.perf_counter() - t0

    decode = 0.0
    stream = prefetch(load, dataset.samples, depth)
    while True:
        t0 = time.perf_counter()
        batch = [item for _, item in zip(range(io.batch), stream)]
        t0 = timer.add("waiting_for_data", t0)
        if not batch:
            break
        preds = predict_classes(session, io, [b[1] for b in batch])
        t0 = timer.add("artifact", t0)
        ref_preds = None
        if reference is not None:
            assert ref_io is not None, "a reference comes with its ModelIO"
            ref_preds = predict_classes(reference, ref_io, [b[1] for b in batch])
        t0 = timer.add("reference", t0)
        for i, (sample, _, label, seconds) in enumerate(batch):
            decode += seconds
            if ref_preds is not None and agree is not None:  # both exactly when there is a reference
                agree.add(ref_preds[i], preds[i])
            if label is not None and conf is not None:
                if dataset.num_classes is None:
                    check_label_range(label, io.num_classes, sample.label)
                conf.add(label, resize_nearest(preds[i], label.shape))
                if ref_conf is not None and ref_preds is not None:  # ref_conf only with a reference
                    ref_conf.add(label, resize_nearest(ref_preds[i], label.shape))
        timer.add("metrics", t0)
        images += len(batch)
        if progress:
            progress(len(batch))
    wall = time.perf_counter() - start
    return _report(conf, ref_conf, agree, names, images, wall, decode, timer.seconds)


def predict_classes(session, io: ModelIO, xs: list[np.ndarray]) -> np.ndarray:
    """Argmax class maps (uint8) for up to ``io.batch`` preprocessed images (last batch padded)."""
    x = np.zeros(io.input.shape, dtype=np.dtype(io.input.dtype))
    x[: len(xs)] = np.stack(xs)
    logits = session.run({io.input.name: x})[io.output_index]
    return np.argmax(logits[: len(xs)], axis=1).astype(np.uint8)


def _report(conf, ref_conf, agree, names, images, wall, decode, seconds) -> dict:
    out: dict = {"images": images}
    if conf is not None:
        out["accuracy"] = conf.scores(names)
        out["confusion"] = {
            "rows": "ground truth",
            "columns": "prediction",
            "classes": list(names),
            "matrix": conf.matrix.tolist(),
        }
    if ref_conf is not None:
        out["reference_accuracy"] = ref_conf.scores(names)
        a, r = out["accuracy"]["miou"], out["reference_accuracy"]["miou"]
        out["miou_drop"] = None if a is None or r is None else r - a
    if agree is not None:
        out["agreement"] = agree.scores()
    out["timing"] = {
        "seconds": wall,
        "images_per_second": images / wall if wall > 0 else None,
        "decode_seconds_in_background": decode,
        **{f"{k}_seconds": v for k, v in seconds.items()},
    }
    return out


def artifact_label(path: Path, manifest: dict) -> str:
    return f"artifact {path} ({manifest.get('target', {}).get('name', '?')}, {manifest.get('backend', '?')})"
