"""`deploycc verify` end to end on the golden model: scores worked out by hand, gates, exit codes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import run_cli
from PIL import Image
from seg_golden import H, W, class_image, seg_model, write_cityscapes, write_folder

from deploycc.pipeline.pipeline import build


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """Artifacts of the golden model for both CPU backends, and of a copy that never predicts class 5."""
    root = tmp_path_factory.mktemp("art")
    onnx.save(seg_model(), root / "golden.onnx")
    onnx.save(seg_model(drop_class=5), root / "no5.onnx")
    out = {"golden.onnx": root / "golden.onnx"}
    for target in ("cpu-ort", "cpu"):
        out[target] = build(str(root / "golden.onnx"), target, root / f"golden.{target}").out
    out["no5"] = build(str(root / "no5.onnx"), "cpu-ort", root / "no5.cpu-ort").out
    return out


def verify(capsys, *args) -> tuple[int, dict | str]:
    code = run_cli(["verify", *args, "--json"])
    out, err = capsys.readouterr()
    if code in (2, 3):  # bad input, or not verified: one line on stderr, no report
        return code, err
    return code, json.loads(out)


def naive_miou(pairs) -> float:
    """IoU by explicit per-class counting (an implementation independent of np.bincount)."""
    ious = []
    for c in range(19):
        tp = fp = fn = 0
        for pred, gt in pairs:
            valid = gt != 255
            tp += int(np.sum((gt == c) & (pred == c)))
            fp += int(np.sum(valid & (gt != c) & (pred == c)))
            fn += int(np.sum((gt == c) & (pred != c)))
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
    return sum(ious) / len(ious)


@pytest.mark.parametrize("target", ["cpu-ort", "cpu"])
def test_exact_model_scores_one_on_every_backend(tmp_path, capsys, artifacts, target):
    pairs = write_folder(tmp_path / "d", n=3)
    code, report = verify(capsys, artifacts[target], "--data", tmp_path / "d", "--min-miou", "99.9")
    assert code == 0 and report["ok"]
    acc = report["accuracy"]
    assert acc["miou"] == 1.0 and acc["pixel_accuracy"] == 1.0
    assert acc["classes_scored"] == len(np.unique(np.concatenate([p[1][p[1] != 255] for p in pairs])))
    assert acc["pixels"] == 3 * (H * W - 3)  # 3 ignored pixels per label image
    assert report["data"]["layout"] == "folder" and report["preprocessing"]["source"] == "manifest"


def test_wrong_labels_give_the_hand_counted_miou(tmp_path, capsys, artifacts):
    pairs = write_folder(tmp_path / "d", n=3, wrong=10)
    code, report = verify(capsys, artifacts["cpu-ort"], "--data", tmp_path / "d")
    assert code == 0
    expected = naive_miou([(cls, label) for cls, label in pairs])
    assert report["accuracy"]["miou"] == pytest.approx(expected) and expected < 1.0
    assert report["accuracy"]["pixel_accuracy"] == pytest.approx(1 - 30 / (3 * (H * W - 3)))


def test_cityscapes_layout_maps_label_ids_and_ignores_void(tmp_path, capsys, artifacts):
    write_cityscapes(tmp_path / "cs", n=2)
    code, report = verify(capsys, artifacts["cpu"], "--data", tmp_path / "cs")
    assert code == 0
    assert report["accuracy"]["miou"] == 1.0
    assert report["accuracy"]["pixels"] == 2 * (H * W - 4)  # the 2x2 ego-vehicle corner is ignored
    assert report["data"] == {
        "path": str(tmp_path / "cs"),
        "layout": "cityscapes",
        "split": "val",
        "images": 2,
        "classes": 19,
    }


def test_drop_against_the_reference_and_its_gate(tmp_path, capsys, artifacts):
    pairs = write_folder(tmp_path / "d", n=4, seed=3)
    args = [artifacts["no5"], "--data", tmp_path / "d", "--reference", artifacts["golden.onnx"]]
    code, report = verify(capsys, *args, "--max-miou-drop", "50")
    assert code == 1  # a different model: the numerics gate fails, the drop gate holds
    assert [(g["gate"], g["ok"]) for g in report["gates"]] == [
        ("numerics vs reference", False),
        ("max-miou-drop", True),
    ]
    share5 = sum(int(np.sum(cls == 5)) for cls, _ in pairs) / (4 * H * W)
    assert share5 > 0
    assert report["agreement"]["pixel_agreement"] == pytest.approx(1 - share5)
    assert report["reference_accuracy"]["miou"] == 1.0
    assert report["miou_drop"] == pytest.approx(1.0 - report["accuracy"]["miou"]) and report["miou_drop"] > 0
    code, report = verify(capsys, *args, "--max-miou-drop", "0.01")
    assert code == 1 and not report["ok"]
    assert [g["gate"] for g in report["gates"] if not g["ok"]] == ["numerics vs reference", "max-miou-drop"]


def test_same_model_as_reference_agrees_fully(tmp_path, capsys, artifacts):
    write_folder(tmp_path / "d", n=2)
    code, report = verify(
        capsys,
        artifacts["cpu"],
        "--data",
        tmp_path / "d",
        "--reference",
        artifacts["golden.onnx"],
        "--max-miou-drop",
        "0",
    )
    assert code == 0
    assert report["agreement"] == {"pixel_agreement": 1.0, "miou": 1.0, "pixels": 2 * H * W}
    assert report["miou_drop"] == 0.0 and report["numerics"]["ok"]


def test_min_miou_gate_fails_with_exit_1_and_one_line(tmp_path, capsys, artifacts):
    write_folder(tmp_path / "d", n=2, wrong=40)
    assert run_cli(["verify", artifacts["cpu-ort"], "--data", tmp_path / "d", "--min-miou", "99"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gate min-miou failed" in err[0]


def test_numerics_only_against_an_artifact_reference(capsys, artifacts):
    code, report = verify(capsys, artifacts["cpu"], "--reference", artifacts["cpu-ort"])
    assert code == 0 and report["numerics"]["ok"] and "accuracy" not in report


def test_images_larger_than_the_model_are_scored_at_label_resolution(tmp_path, capsys, artifacts):
    rng = np.random.default_rng(5)
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "labels").mkdir()
    cls = np.full((2 * H, 2 * W), 4, np.uint8)
    cls[:, W:] = 5  # adjacent classes: a blurred border can only be read as one or the other
    Image.fromarray(class_image(cls, rng)).save(tmp_path / "d" / "images" / "a.png")
    Image.fromarray(cls).save(tmp_path / "d" / "labels" / "a.png")
    code, report = verify(capsys, artifacts["cpu-ort"], "--data", tmp_path / "d")
    assert code == 0
    assert report["accuracy"]["pixels"] == 4 * H * W
    assert report["accuracy"]["classes_scored"] == 2
    # the image is resized to 32 x 64; at most the border columns may flip
    assert report["accuracy"]["pixel_accuracy"] >= 1 - 4 / (2 * W)
    assert report["resolution"]["model_input"] == [H, W]


def test_remaining_device_step_is_refused(tmp_path, capsys, artifacts):
    import shutil

    from deploycc.pipeline.artifact import read_manifest, write_manifest

    art = tmp_path / "bundle"
    shutil.copytree(artifacts["cpu-ort"], art)
    manifest = read_manifest(art)
    manifest.pop("files")
    manifest["remaining"] = [{"what": "build the TensorRT engine", "command": "deploycc build --resume bundle"}]
    write_manifest(art, manifest)
    code, err = verify(capsys, art, "--data", tmp_path)
    # not verified (exit 3: unverified), with what would verify it; never a pass
    assert code == 3 and "finish it on the device" in err and len(err.strip().splitlines()) == 1


def test_batched_artifact_pads_the_last_batch(tmp_path, capsys):
    onnx.save(seg_model(batch=2), tmp_path / "b2.onnx")
    art = build(str(tmp_path / "b2.onnx"), "cpu-ort", tmp_path / "b2").out
    write_folder(tmp_path / "d", n=3, wrong=5)
    code, report = verify(capsys, art, "--data", tmp_path / "d")
    assert code == 0 and report["images"] == 3
    assert report["accuracy"]["pixels"] == 3 * (H * W - 3)
    assert report["accuracy"]["pixel_accuracy"] == pytest.approx(1 - 15 / (3 * (H * W - 3)))


def test_max_images_evaluates_the_first_n(tmp_path, capsys, artifacts):
    write_folder(tmp_path / "d", n=3)
    code, report = verify(capsys, artifacts["cpu-ort"], "--data", tmp_path / "d", "--max-images", "1")
    assert code == 0 and report["images"] == 1 and report["data"]["images"] == 1
    assert report["accuracy"]["pixels"] == H * W - 3


def test_quantized_artifact_numerics_are_reported_not_gated(tmp_path, capsys, artifacts):
    """INT8 vs FP32 error is judged by the mIoU drop; the manifest's quantization record says INT8."""
    import shutil

    from deploycc.pipeline.artifact import read_manifest, write_manifest

    art = tmp_path / "int8"
    shutil.copytree(artifacts["no5"], art)
    manifest = read_manifest(art)
    manifest.pop("files")
    manifest["quantization"] = {"placement": "test"}
    write_manifest(art, manifest)
    write_folder(tmp_path / "d", n=2, seed=3)
    code, report = verify(
        capsys, art, "--data", tmp_path / "d", "--reference", artifacts["golden.onnx"], "--max-miou-drop", "50"
    )
    assert code == 0 and report["numerics"]["gated"] is False and not report["numerics"]["ok"]
    assert [g["gate"] for g in report["gates"]] == ["max-miou-drop"]
