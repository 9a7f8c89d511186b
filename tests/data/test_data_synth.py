"""`deploycc data synth`: deterministic street scenes with valid Cityscapes labels."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from deploycc.core.errors import UserError
from deploycc.data import open_dataset
from deploycc.data.cityscapes import LABEL_IDS, LABEL_TO_TRAIN
from deploycc.data.synth import scene, write_split


def digests(root) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))}


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path):
    write_split(tmp_path / "a", "val", 3, (64, 128), seed=4)
    write_split(tmp_path / "b", "val", 3, (64, 128), seed=4)
    write_split(tmp_path / "c", "val", 3, (64, 128), seed=5)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    a = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "a" / "leftImg8bit").rglob("*.png"))]
    c = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "c" / "leftImg8bit").rglob("*.png"))]
    assert all(not np.array_equal(x, y) for x, y in zip(a, c))
    assert len({hashlib.sha256(x.tobytes()).hexdigest() for x in a}) == 3


def test_more_scenes_keep_the_first_ones(tmp_path):
    write_split(tmp_path / "two", "val", 2, (64, 128), seed=1)
    write_split(tmp_path / "three", "val", 3, (64, 128), seed=1)
    two, three = digests(tmp_path / "two"), digests(tmp_path / "three")
    assert all(three[k] == v for k, v in two.items()) and len(three) == 6


@pytest.mark.parametrize("seed", range(6))
def test_scene_content(seed):
    image, labels = scene(seed, 0, 96, 192)
    assert image.shape == (96, 192, 3) and image.dtype == np.uint8
    assert labels.shape == (96, 192)
    assert np.all(LABEL_TO_TRAIN[labels] >= 0), "every value is a Cityscapes labelId"
    present = set(np.unique(labels).tolist())
    assert {LABEL_IDS["road"], LABEL_IDS["sky"], LABEL_IDS["building"]} <= present
    assert image.std() > 20  # textured, not flat colour


def test_classes_over_a_small_set():
    present = set()
    for i in range(8):
        present |= set(np.unique(scene(11, i, 128, 256)[1]).tolist())
    wanted = {"road", "sidewalk", "building", "pole", "traffic sign", "vegetation", "sky", "person", "car"}
    assert {LABEL_IDS[n] for n in wanted} <= present


def test_layout_reads_back_and_records_parameters(tmp_path):
    record = write_split(tmp_path, "train", 2, (64, 128), seed=7)
    ds = open_dataset(tmp_path, "train")
    assert [s.name for s in ds.samples] == ["synth/synth_000007_000000", "synth/synth_000007_000001"]
    image, label = ds.read(ds.samples[0])
    assert image.shape == (64, 128, 3) and label.max() <= 255
    assert json.loads((tmp_path / "synth_train.json").read_text()) == record
    assert record["command"].endswith("--split train --n 2 --size 64x128 --seed 7")


def test_existing_split_is_refused_unless_overwrite(tmp_path):
    write_split(tmp_path, "val", 1, (64, 128), seed=0)
    with pytest.raises(UserError, match="exists"):
        write_split(tmp_path, "val", 1, (64, 128), seed=1)
    write_split(tmp_path, "val", 2, (64, 128), seed=1, overwrite=True)
    assert len(open_dataset(tmp_path).samples) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".synth")]


def test_cli(tmp_path, capsys):
    assert run_cli(["data", "synth", "--out", tmp_path, "--n", "2", "--size", "64x128", "--seed", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2
    assert run_cli(["data", "check", tmp_path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 2 and report["sizes"] == {"64x128": 2} and report["pixels_per_class"]["road"] > 0


@pytest.mark.parametrize(
    "args, words",
    [
        (["--size", "64"], ["--size", "H x W"]),
        (["--size", "16x16"], ["--size 16x16", "at least"]),
        (["--n", "0"], ["--n 0"]),
        (["--split", "../x"], ["--split"]),
    ],
)
def test_cli_bad_options(tmp_path, capsys, args, words):
    assert run_cli(["data", "synth", "--out", tmp_path / "o", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words)
    assert not (tmp_path / "o" / "leftImg8bit").exists()
