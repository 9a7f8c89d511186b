"""`deploycc train`: a deterministic run exports a valid model with its recipe; bad options exit 2."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import run_cli
from onnx import numpy_helper

from deploycc.data.synth import write_split

ARCH = {
    "format": "deploycc-arch",
    "version": 1,
    "name": "tiny_seg",
    "space": "squeezenas",
    "backbone": "xlarge",
    "head": "aspp",
    "genotype": ["skip"] * 22,
    "num_classes": 19,
    "input_shape": [1, 3, 64, 128],
}
ARCH["genotype"][1] = ARCH["genotype"][5] = ARCH["genotype"][9] = "k3e1"  # stride-2 units with a conv


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_split(root / "data", "train", 3, (64, 128), seed=1)
    write_split(root / "data", "val", 1, (64, 128), seed=2)
    (root / "arch.json").write_text(json.dumps(ARCH))
    return root


def _train(root, name: str) -> tuple[int, onnx.ModelProto]:
    out = root / f"{name}.onnx"
    code = run_cli(
        [
            "train",
            root / "arch.json",
            "--data",
            root / "data",
            "-o",
            out,
            "--steps",
            "2",
            "--batch",
            "2",
            "--threads",
            "1",
            "--seed",
            "5",
            "--json",
        ]
    )
    return code, onnx.load(str(out)) if out.exists() else None


def test_two_runs_give_the_same_weights_and_record_the_recipe(setup, capsys):
    code_a, a = _train(setup, "a")
    report = json.loads(capsys.readouterr().out)
    code_b, b = _train(setup, "b")
    assert code_a == code_b == 0
    wa = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    wb = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer}
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    meta = {p.key: p.value for p in a.metadata_props}
    recipe = json.loads(meta["deploycc.training"])
    assert recipe["command"].startswith("deploycc train ") and "--seed 5" in recipe["command"]
    assert recipe["data"]["train"]["seed"] == 1 and recipe["data"]["val"]["seed"] == 2
    assert recipe["validation"]["images"] == 1 and 0.0 <= recipe["validation"]["miou"] <= 1.0
    assert report["validation"] == recipe["validation"]
    assert json.loads(meta["deploycc.preprocessing"])["scale"] == pytest.approx(1 / 255)
    onnx.checker.check_model(a)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--steps", "0"], ["--steps 0"]),
        (["-o", "model.pth"], [".onnx"]),
    ],
)
def test_bad_options(setup, capsys, args, words):
    base = ["train", setup / "arch.json", "--data", setup / "data", "-o", setup / "m.onnx"]
    assert run_cli(base + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words)


def test_plain_folder_is_refused(tmp_path, capsys, setup):
    (tmp_path / "plain" / "images").mkdir(parents=True)
    assert run_cli(["train", setup / "arch.json", "--data", tmp_path / "plain", "-o", tmp_path / "m.onnx"]) == 2
    assert "Cityscapes layout" in capsys.readouterr().err


def test_an_existing_output_is_replaced_only_with_overwrite_and_an_input_never(setup, capsys):
    base = ["train", setup / "arch.json", "--data", setup / "data", "--steps", "1", "--batch", "2"]
    mine = setup / "mine.onnx"
    mine.write_text("the user's file")
    assert run_cli([*base, "-o", mine]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and mine.read_text() == "the user's file"
    assert run_cli([*base, "-o", setup / "data" / "m.onnx", "--overwrite"]) == 2  # inside the data set
    assert "input" in capsys.readouterr().err and not (setup / "data" / "m.onnx").exists()
    assert run_cli([*base, "-o", mine, "--overwrite"]) == 0
    onnx.checker.check_model(onnx.load(str(mine)))
    assert not [p.name for p in setup.iterdir() if p.name.startswith(".")]  # no staging left beside it
