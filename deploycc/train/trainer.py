"""``deploycc train``: train a segmentation architecture on labelled data with PyTorch on the CPU.

Deterministic for a given seed, thread count and CPU kind: ``torch.manual_seed``,
``torch.use_deterministic_algorithms(True)``, a fixed thread count, and every random draw (batch
order, flips, photometric jitter) from one seeded ``torch.Generator``. The split is held in memory
in memory (a few hundred small scenes), resized to the architecture's input size if needed.
One thread by default: a different thread count changes the reduction order (and so the weights),
and on a shared machine a 2-thread OpenMP step was measured 7x slower in wall time than a 1-thread
one (threads spinning at barriers while the other is descheduled).

Recipe: AdamW, linear warm-up then cosine decay, cross-entropy over the train classes with the
ignore label left out and class weights (median frequency / frequency)^0.5 so that thin classes
(poles, signs) are not drowned by road and sky. The result is exported to ONNX (BatchNorm kept,
preprocessing in the metadata), scored on the validation split with the same code as
``deploycc verify``, and the recipe (exact command, seeds, figures) is stored in the model's
``deploycc.training`` metadata.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from deploycc.core.errors import UserError
from deploycc.core.outputs import check_output, clean_stale_staging, remove_path, staging_path
from deploycc.data import open_dataset
from deploycc.data.io import preprocess, resize_nearest


@dataclass(frozen=True)
class TrainConfig:
    arch: str
    data: str
    out: str
    steps: int = 600
    batch: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup: int = 30
    seed: int = 0
    threads: int = 1
    train_split: str = "train"
    val_split: str = "val"

    def command(self) -> str:
        return (
            f"deploycc train {shlex.quote(self.arch)} --data {shlex.quote(self.data)} -o {shlex.quote(self.out)} "
            f"--steps {self.steps} --batch {self.batch} --lr {self.lr:g} --seed {self.seed} --threads {self.threads} "
            f"--train-split {self.train_split} --val-split {self.val_split}"
        )


def check_config(cfg: TrainConfig) -> None:
    for name, value, low in (("--steps", cfg.steps, 1), ("--batch", cfg.batch, 1), ("--threads", cfg.threads, 1)):
        if value < low:
            raise UserError(f"{name} {value}: must be at least {low}")
    if not cfg.lr > 0:
        raise UserError(f"--lr {cfg.lr}: must be positive")
    if not str(cfg.out).endswith(".onnx"):
        raise UserError(f"-o {cfg.out}: the trained model is written as ONNX; give a .onnx path")


def check_train_output(cfg: TrainConfig, overwrite: bool) -> Path:
    """``-o``, before any training: a new .onnx file in an existing folder, or one to replace with
    ``overwrite``; never the architecture file or inside the data set."""
    out = check_output(cfg.out, [cfg.arch, cfg.data], overwrite, folder=False, ours=None)
    if not out.parent.is_dir():
        raise UserError(f"-o {out}: folder {out.parent} does not exist")
    return out


def load_split(data: str, split: str, hw: tuple[int, int], prep: dict, num_classes: int):
    """(N x 3 x H x W float32 inputs, N x H x W uint8 labels) of a whole split, at ``hw``."""
    if not (Path(data) / "leftImg8bit").is_dir():
        raise UserError(
            f"--data {data}: training reads the Cityscapes layout (leftImg8bit/ + gtFine/ with "
            f"{split!r} and validation splits); `deploycc data synth` writes one"
        )
    dataset = open_dataset(data, split)
    if dataset.num_classes and dataset.num_classes != num_classes:
        raise UserError(f"{data}: {dataset.num_classes} classes, the architecture has {num_classes}")
    xs, ys = [], []
    for sample in dataset.samples:
        image, label = dataset.read(sample)
        assert label is not None, "the training set is opened with require_labels"
        xs.append(preprocess(image, prep, hw))
        ys.append(resize_nearest(label, hw))
    return np.stack(xs), np.stack(ys)


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels[labels < num_classes].ravel(), minlength=num_classes).astype(np.float64)
    present = counts > 0
    freq = counts / counts.sum()
    weights = np.ones(num_classes)
    weights[present] = np.clip(np.sqrt(np.median(freq[present]) / freq[present]), 0.2, 5.0)
    return weights.astype(np.float32)


def train(cfg: TrainConfig, log=None, overwrite: bool = False) -> dict:
    """Train, export to ``cfg.out`` and score on the validation split; returns the recipe. ``cfg.out``
    is checked first, under the output policy of every command (``deploycc.core.outputs``): an
    existing file there is replaced only with ``overwrite``, an input never."""
    import torch
    import torch.nn.functional as F

    from deploycc.models import build_module, resolve_arch

    check_config(cfg)
    check_train_output(cfg, overwrite)
    arch = resolve_arch(cfg.arch)
    if arch.space != "squeezenas":
        raise UserError(f"{cfg.arch}: training needs a segmentation architecture (squeezenas space), got {arch.space}")
    hw = (arch.input_shape[2], arch.input_shape[3])
    prep = arch.preprocessing.to_dict()
    x_all, y_all = load_split(cfg.data, cfg.train_split, hw, prep, arch.num_classes)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_module(arch).train()
    weights = torch.from_numpy(class_weights(y_all, arch.num_classes))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x_all, y_all = torch.from_numpy(x_all), torch.from_numpy(y_all.astype(np.int64))
    start, losses, order = time.perf_counter(), [], torch.empty(0, dtype=torch.long)
    for step in range(cfg.steps):
        if len(order) < cfg.batch:
            order = torch.cat([order, torch.randperm(len(x_all), generator=gen)])
        idx, order = order[: cfg.batch], order[cfg.batch :]
        x, y = _augment(x_all[idx], y_all[idx], gen)
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        loss = F.cross_entropy(model(x), y, weight=weights, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if log and (step % 25 == 0 or step == cfg.steps - 1):
            log(step + 1, cfg.steps, float(np.mean(losses[-25:])), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    return _finish(cfg, arch, model.eval(), seconds, losses)


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def _augment(x, y, gen):
    """Random horizontal flips and brightness/contrast jitter (in normalized space), per sample."""
    import torch

    flip = torch.rand(len(x), generator=gen) < 0.5
    x, y = x.clone(), y.clone()
    x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
    gain = 1 + (torch.rand(len(x), 1, 1, 1, generator=gen) - 0.5) * 0.4
    shift = (torch.rand(len(x), 1, 1, 1, generator=gen) - 0.5) * 0.4
    return x * gain + shift, y


def _finish(cfg: TrainConfig, arch, model, seconds: float, losses: list[float]) -> dict:
    import torch

    from deploycc.models import export_onnx

    out = Path(cfg.out)
    recipe = {
        "command": cfg.command(),
        "config": asdict(cfg),
        "arch": arch.to_dict(),
        "data": _data_record(cfg),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "train_seconds": round(seconds, 1),
        "final_loss": float(np.mean(losses[-25:])),
    }
    clean_stale_staging(out.parent)
    tmp = staging_path(out)  # named per run and process: a killed run's is removed by the next write here
    tmp.mkdir()
    try:
        weights = tmp / "weights.pth"
        torch.save(model.state_dict(), weights)
        exported = export_onnx(arch, tmp / "model.onnx", weights=weights)
        recipe["validation"] = _validate(exported, cfg)
        model_proto = onnx.load(str(exported))
        model_proto.metadata_props.add(key="deploycc.training", value=json.dumps(recipe, sort_keys=True))
        onnx.save(model_proto, str(exported))
        os.replace(exported, out)
    finally:
        remove_path(tmp)
    return recipe


def _data_record(cfg: TrainConfig) -> dict:
    """The synth parameters of the splits when the data was made by ``deploycc data synth``."""
    record = {"path": cfg.data}
    for split in (cfg.train_split, cfg.val_split):
        path = Path(cfg.data) / f"synth_{split}.json"
        if path.is_file():
            record[split] = json.loads(path.read_text())
    return record


def _validate(onnx_path: Path, cfg: TrainConfig) -> dict:
    """Scores of the exported model on the validation split (the code of ``deploycc verify``)."""
    from deploycc.core.loader import load_model
    from deploycc.core.metadata import preprocessing_of
    from deploycc.verify.evaluate import OnnxReference, evaluate, model_io

    if not (Path(cfg.data) / "leftImg8bit" / cfg.val_split).is_dir():
        return {"skipped": f"no split {cfg.val_split!r} in {cfg.data}"}
    model = load_model(onnx_path)
    session = OnnxReference(model, cfg.threads)
    dataset = open_dataset(cfg.data, cfg.val_split)
    prep = preprocessing_of(model)
    assert prep is not None, "the trainer records the preprocessing in the ONNX it exports"
    result = evaluate(session, model_io(session, str(onnx_path)), dataset, prep)
    return {"split": cfg.val_split, "images": result["images"], **result["accuracy"]}
