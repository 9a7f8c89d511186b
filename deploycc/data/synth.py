"""``deploycc data synth``: write procedural street scenes in the Cityscapes layout.

Scene ``i`` of a run with seed ``S`` is drawn from ``numpy.random.default_rng([S, i])``: the same
(seed, index, size) gives the same bytes on every machine, a larger ``--n`` extends a set without
changing its first images, and two seeds give disjoint sets (train with one, validate with
another). Files::

    OUT/leftImg8bit/<split>/synth/synth_<seed>_<index>_leftImg8bit.png
    OUT/gtFine/<split>/synth/synth_<seed>_<index>_gtFine_labelIds.png
    OUT/synth_<split>.json      # the parameters, to regenerate the split

A split is written into a staging folder inside OUT named after its process
(``.synth-<split>.deploycc-<pid>-<token>.partial``) and renamed into place when complete, so an
interrupted run leaves no half-written split, and the next run into OUT removes the staging
folders of runs that were killed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from deploycc.core.errors import UserError
from deploycc.core.outputs import clean_stale_staging, remove_path, staging_path, user_path, write_output_bytes

from .cityscapes import IMAGE_SUFFIX, LABEL_SUFFIX
from .scene import generate

GENERATOR_VERSION = 1
CITY = "synth"
MIN_SIZE = (32, 64)


def scene(seed: int, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, labelIds) of scene ``index`` of seed ``seed``."""
    return generate(np.random.default_rng([seed, index]), height, width)


def check_size(size: tuple[int, int]) -> None:
    if size[0] < MIN_SIZE[0] or size[1] < MIN_SIZE[1]:
        raise UserError(f"--size {size[0]}x{size[1]}: scenes need at least {MIN_SIZE[0]}x{MIN_SIZE[1]} (HxW)")


def write_split(
    out: Path, split: str, n: int, size: tuple[int, int], seed: int, overwrite: bool = False, progress=None
) -> dict:
    """Write ``n`` scenes of ``size`` (H, W) as ``split`` under ``out``; returns the record."""
    if n < 1:
        raise UserError(f"--n {n}: must be at least 1")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be >= 0")
    if not split or "/" in split or split.startswith("."):
        raise UserError(f"--split {split!r}: must be a plain folder name (train, val, test, ...)")
    check_size(size)
    out = user_path(out, "--out")
    if os.path.lexists(out) and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    final = {kind: out / kind / split for kind in ("gtFine", "leftImg8bit")}
    if any(os.path.lexists(p) for p in final.values()) and not overwrite:
        raise UserError(f"{out}: split {split!r} exists; pass --overwrite or choose another --split/--out")
    clean_stale_staging(out)  # what a killed run left (named after its process, so only dead ones)
    tmp = staging_path(out / f"synth-{split}")
    tmp.mkdir()
    try:
        for i in range(n):
            _write_scene(tmp, i, seed, size)
            if progress:
                progress(1)
        for kind, dest in final.items():
            if os.path.lexists(dest):
                remove_path(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            (tmp / kind).rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    record = {
        "generator": f"deploycc.data.synth/{GENERATOR_VERSION}",
        "split": split,
        "n": n,
        "size": list(size),
        "seed": seed,
        "command": f"deploycc data synth --out {out} --split {split} --n {n} --size {size[0]}x{size[1]} --seed {seed}",
    }
    write_output_bytes(out / f"synth_{split}.json", (json.dumps(record, indent=2) + "\n").encode())
    return record


def _write_scene(tmp: Path, index: int, seed: int, size: tuple[int, int]) -> None:
    image, labels = scene(seed, index, *size)
    stem = f"{CITY}_{seed:06d}_{index:06d}"
    img_dir, gt_dir = tmp / "leftImg8bit" / CITY, tmp / "gtFine" / CITY
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(img_dir / f"{stem}{IMAGE_SUFFIX}", compress_level=6)
    Image.fromarray(labels).save(gt_dir / f"{stem}{LABEL_SUFFIX}", compress_level=6)
