"""Bad input to `deploycc verify`: one line naming the file or option, exit 2."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import run_cli
from PIL import Image
from seg_golden import seg_model, write_cityscapes, write_folder

from deploycc.pipeline.pipeline import build


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    onnx.save(seg_model(), root / "golden.onnx")
    onnx.save(seg_model(classes=5), root / "five.onnx")
    return {
        "19": build(str(root / "golden.onnx"), "cpu-ort", root / "g").out,
        "5": build(str(root / "five.onnx"), "cpu-ort", root / "f").out,
    }


def fails(capsys, args, *words) -> None:
    assert run_cli(["verify", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for w in words:
        assert w in err[0], err[0]


def test_image_without_label(tmp_path, capsys, art):
    write_folder(tmp_path / "d", n=2)
    (tmp_path / "d" / "labels" / "img1.png").unlink()
    fails(capsys, [art["19"], "--data", tmp_path / "d"], "img1.png", "image without a label")


def test_cityscapes_image_without_label(tmp_path, capsys, art):
    write_cityscapes(tmp_path / "cs", n=2)
    next((tmp_path / "cs" / "gtFine").rglob("*000001_gtFine_labelIds.png")).unlink()
    fails(capsys, [art["19"], "--data", tmp_path / "cs"], "city_000000_000001_leftImg8bit.png", "without a label")


def test_label_value_outside_the_cityscapes_table(tmp_path, capsys, art):
    write_cityscapes(tmp_path / "cs", n=1)
    path = next((tmp_path / "cs" / "gtFine").rglob("*.png"))
    ids = np.asarray(Image.open(path)).copy()
    ids[3, 3] = 40
    Image.fromarray(ids).save(path)
    fails(capsys, [art["19"], "--data", tmp_path / "cs"], path.name, "40", "not Cityscapes labelIds")


def test_folder_label_outside_the_model_classes(tmp_path, capsys, art):
    write_folder(tmp_path / "d", n=1)
    path = tmp_path / "d" / "labels" / "img0.png"
    label = np.asarray(Image.open(path)).copy()
    label[0, 0] = 30
    Image.fromarray(label).save(path)
    fails(capsys, [art["19"], "--data", tmp_path / "d"], "img0.png", "30", "19 classes")


def test_image_and_label_of_different_sizes(tmp_path, capsys, art):
    write_folder(tmp_path / "d", n=1)
    path = tmp_path / "d" / "labels" / "img0.png"
    Image.open(path).resize((10, 10)).save(path)
    fails(capsys, [art["19"], "--data", tmp_path / "d"], "img0.png", "10x10", "64x32")


def test_colour_label_png(tmp_path, capsys, art):
    write_folder(tmp_path / "d", n=1)
    path = tmp_path / "d" / "labels" / "img0.png"
    Image.open(path).convert("RGB").save(path)
    fails(capsys, [art["19"], "--data", tmp_path / "d"], "img0.png", "one channel")


def test_output_does_not_match_the_class_count(tmp_path, capsys, art):
    write_cityscapes(tmp_path / "cs", n=1)
    fails(capsys, [art["5"], "--data", tmp_path / "cs"], "5 channels", "19 classes")


def test_reference_of_another_class_count(tmp_path, capsys, art):
    write_folder(tmp_path / "d", n=1)
    fails(capsys, [art["19"], "--data", tmp_path / "d", "--reference", art["5"]], "reference", "5 classes")


@pytest.mark.parametrize("layout", ["images", "cityscapes", "nothing"])
def test_empty_or_unknown_folder(tmp_path, capsys, art, layout):
    root = tmp_path / "d"
    if layout == "images":
        (root / "images").mkdir(parents=True)
        fails(capsys, [art["19"], "--data", root], "images", "empty dataset")
    elif layout == "cityscapes":
        (root / "leftImg8bit" / "val").mkdir(parents=True)
        fails(capsys, [art["19"], "--data", root], "leftImg8bit/val", "empty dataset")
    else:
        root.mkdir()
        fails(capsys, [art["19"], "--data", root], str(root), "not a dataset")


def test_missing_split_names_the_ones_there(tmp_path, capsys, art):
    write_cityscapes(tmp_path / "cs", n=1, split="train")
    fails(capsys, [art["19"], "--data", tmp_path / "cs"], "'val'", "train")


@pytest.mark.parametrize(
    "args, words",
    [
        ([], ["--data", "--reference"]),
        (["--data", "D", "--min-miou", "170"], ["--min-miou 170", "percent"]),
        (["--data", "D", "--min-miou", "0.7"], ["--min-miou 0.7", "--min-miou 70"]),
        (["--data", "D", "--max-miou-drop", "0.01"], ["--max-miou-drop", "--reference"]),
        (["--max-miou-drop", "0.01", "--reference", "x.onnx"], ["--max-miou-drop", "--data"]),
    ],
)
def test_bad_options(tmp_path, capsys, art, args, words):
    fails(capsys, [art["19"], *[str(tmp_path / a) if a == "D" else a for a in args]], *words)


def test_not_an_artifact(tmp_path, capsys):
    fails(capsys, [tmp_path, "--reference", "x.onnx"], str(tmp_path), "manifest.json")
