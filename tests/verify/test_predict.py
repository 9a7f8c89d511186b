"""`deploycc predict` on the golden model, whose class map is known for every photo it sees."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import run_cli
from PIL import Image
from seg_golden import H, W, blocks, class_image, seg_model

from deploycc.data.palette import TRAIN_COLORS, palette
from deploycc.pipeline.pipeline import build
from deploycc.report.overlay import blend


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    onnx.save(seg_model(), root / "golden.onnx")
    onnx.save(seg_model(drop_class=5), root / "no5.onnx")
    return {
        "golden": build(str(root / "golden.onnx"), "cpu-ort", root / "golden.cpu-ort").out,
        "no5.onnx": root / "no5.onnx",
    }


def photo(path, classes, seed=0, mode="RGB"):
    img = Image.fromarray(class_image(classes, np.random.default_rng(seed)))
    (img.convert(mode) if mode != "RGB" else img).save(path)
    return path


def predict(capsys, *args):
    code = run_cli(["predict", *map(str, args), "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else err)


def test_class_maps_are_exact_at_model_size_and_follow_larger_photos(tmp_path, capsys, arts):
    rng = np.random.default_rng(3)
    small = blocks(rng)
    big = np.kron(blocks(rng), np.ones((3, 3), np.int64)).astype(np.uint8)  # 96 x 192, blocks of 24 px
    code, rep = predict(
        capsys,
        arts["golden"],
        photo(tmp_path / "small.png", small),
        photo(tmp_path / "big.png", big, 1),
        "-o",
        tmp_path / "out",
    )
    assert code == 0, rep
    got = np.asarray(Image.open(tmp_path / "out" / "small_trainIds.png"))
    assert Image.open(tmp_path / "out" / "small_trainIds.png").mode == "L"
    assert np.array_equal(got, small)
    got_big = np.asarray(Image.open(tmp_path / "out" / "big_trainIds.png"))
    assert got_big.shape == (3 * H, 3 * W)
    inner = np.zeros(big.shape, bool)  # each block but a 4-pixel rim, where resampling mixes classes
    for r in range(0, 3 * H, 24):
        for c in range(0, 3 * W, 24):
            inner[r + 4 : r + 20, c + 4 : c + 20] = True
    assert np.array_equal(got_big[inner], big[inner])
    shares = {c["class"]: c["share"] for c in rep["photos"][0]["classes"]}
    assert shares == {int(c): float(np.mean(small == c)) for c in np.unique(small)}
    assert rep["preprocessing"]["source"] == "manifest" and rep["resolution"].startswith("photo resized")


def test_odd_sized_photo_gets_a_map_of_its_own_size(tmp_path, capsys, arts):
    odd = np.asarray(Image.fromarray(blocks(np.random.default_rng(4))).resize((77, 50), Image.NEAREST))
    code, rep = predict(capsys, arts["golden"], photo(tmp_path / "odd.jpg", odd), "-o", tmp_path / "out")
    assert code == 0, rep
    assert np.asarray(Image.open(tmp_path / "out" / "odd_trainIds.png")).shape == (50, 77)
    assert rep["photos"][0]["size"] == [77, 50]


def test_overlay_blends_the_cityscapes_palette_and_has_a_legend_panel(tmp_path, capsys, arts):
    classes = np.zeros((H, W), np.uint8)  # road everywhere
    src = photo(tmp_path / "road.png", classes)
    code, rep = predict(capsys, arts["golden"], src, "-o", tmp_path / "out")
    assert code == 0, rep
    assert tuple(palette(19)[0]) == TRAIN_COLORS[0] == (128, 64, 128)
    overlay = np.asarray(Image.open(tmp_path / "out" / "road_overlay.png").convert("RGB"))
    assert overlay.shape[1] > W and overlay.shape[0] >= H  # the legend sits to the right of the photo
    image = np.asarray(Image.open(src))
    expected = blend(image[:1, :1], np.asarray(TRAIN_COLORS[0], np.uint8).reshape(1, 1, 3))[0, 0]
    assert np.array_equal(overlay[0, 0], expected)
    assert rep["photos"][0]["files"] == {"classes": "road_trainIds.png", "overlay": "road_overlay.png"}


def test_reference_disagreement_is_exactly_the_pixels_the_reference_cannot_predict(tmp_path, capsys, arts):
    classes = blocks(np.random.default_rng(7))
    classes[:8, :8] = 5  # make sure class 5 is there
    code, rep = predict(
        capsys,
        arts["golden"],
        photo(tmp_path / "p.png", classes),
        "-o",
        tmp_path / "out",
        "--reference",
        arts["no5.onnx"],
    )
    assert code == 0, rep
    assert rep["photos"][0]["disagreement"] == pytest.approx(float(np.mean(classes == 5)))
    dis = np.asarray(Image.open(tmp_path / "out" / "p_disagreement.png").convert("RGB"))
    assert dis.shape[1] > W
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "p_disagreement.png",
        "p_overlay.png",
        "p_trainIds.png",
        "predictions.json",
    ]


def test_a_folder_stands_for_its_photos(tmp_path, capsys, arts):
    (tmp_path / "photos").mkdir()
    for i in range(2):
        photo(tmp_path / "photos" / f"p{i}.png", blocks(np.random.default_rng(i)), i)
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    code, rep = predict(capsys, arts["golden"], tmp_path / "photos", "-o", tmp_path / "out")
    assert code == 0, rep
    assert [p["photo"].rsplit("/", 1)[1] for p in rep["photos"]] == ["p0.png", "p1.png"]


@pytest.mark.parametrize(
    "case, needle",
    [
        ("grey", "1 channel(s) (mode L)"),
        ("cmyk", "4 channel(s) (mode CMYK)"),
        ("text", "cannot read image"),
        ("transparent", "transparent pixels"),
        ("missing", "no such image file"),
        ("twice", "would collide"),
    ],
)
def test_bad_photos_exit_2_in_one_line_and_leave_the_output_alone(tmp_path, capsys, arts, case, needle):
    classes = blocks(np.random.default_rng(0))
    good = photo(tmp_path / "good.png", classes)
    bad = tmp_path / f"bad.{'jpg' if case == 'cmyk' else 'png'}"
    if case == "grey":
        photo(bad, classes, mode="L")
    elif case == "cmyk":
        photo(bad, classes, mode="CMYK")
    elif case == "text":
        bad.write_text("this is no image")
    elif case == "transparent":
        rgba = np.dstack([class_image(classes, np.random.default_rng(0)), np.full((H, W), 128, np.uint8)])
        Image.fromarray(rgba, "RGBA").save(bad)
    elif case == "twice":
        (tmp_path / "b").mkdir()
        bad = photo(tmp_path / "b" / "good.png", classes)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = predict(capsys, arts["golden"], good, bad, "-o", out, "--overwrite")  # even with --overwrite
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_output_that_is_a_file_is_refused(tmp_path, capsys, arts):
    (tmp_path / "out").write_text("a file")
    code, err = predict(
        capsys, arts["golden"], photo(tmp_path / "p.png", blocks(np.random.default_rng(0))), "-o", tmp_path / "out"
    )
    assert code == 2 and "is not a folder" in err


def test_model_without_an_image_input_is_refused(tmp_path, capsys):
    text = f"""<ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,{H},{W}] x) => (float[1,4,{H},{W}] y) {{ y = Relu(x) }}"""
    onnx.save(onnx.parser.parse_model(text), tmp_path / "four.onnx")
    art = build(str(tmp_path / "four.onnx"), "cpu-ort", tmp_path / "four.cpu-ort").out
    code, err = predict(capsys, art, photo(tmp_path / "p.png", blocks(np.random.default_rng(0))), "-o", tmp_path / "o")
    assert code == 2 and "expected N x 3 x H x W" in err


def test_a_phone_photo_is_labelled_upright_as_its_exif_orientation_says(tmp_path, capsys, arts):
    classes = blocks(np.random.default_rng(5))  # H x W as the model wants it
    upright = Image.fromarray(class_image(classes, np.random.default_rng(5)))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # the sensor's W x H pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    stored.save(tmp_path / "phone.png", exif=exif)
    code, rep = predict(capsys, arts["golden"], tmp_path / "phone.png", "-o", tmp_path / "out")
    assert code == 0, rep
    assert rep["photos"][0]["size"] == [W, H]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "phone_trainIds.png")), classes)


def test_the_legend_lists_the_classes_present_and_counts_the_specks():
    from deploycc.verify.predict import class_shares, legend_entries

    classes = np.zeros((100, 100), np.uint8)  # road, with a car and a 3-pixel speck of pole
    classes[50:, :40] = 13
    classes[0, :3] = 5
    names = [f"c{i}" for i in range(19)]
    entries = legend_entries(class_shares(classes, names), palette(19))
    assert [label for label, _ in entries] == ["c0 80.0 %", "c13 20.0 %", "+1 class(es) under 0.1 %"]
    assert not any(label.endswith(" 0.0 %") for label, _ in entries)
