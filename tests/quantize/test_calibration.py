"""Calibration sets: images from a folder with the model's preprocessing, or the synthetic default."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deploycc.core.errors import UserError
from deploycc.quantize.calibration import DEFAULT_SOURCE, calibration_set, preprocess

PREP = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "scale": 1 / 255, "layout": "NCHW", "color": "RGB"}


def _write_images(folder, n, size=(40, 30)):
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", size, (10 * i, 100, 200)).save(folder / f"img{i}.png")


def test_folder_images_get_the_models_preprocessing(tmp_path):
    _write_images(tmp_path / "imgs", 3)
    cs = calibration_set("image", (1, 3, 16, 32), PREP, tmp_path / "imgs", count=2)
    assert len(cs.tensors) == 2 and cs.tensors[0].shape == (1, 3, 16, 32)
    # pixel (0, 100, 200) -> (x / 255 - 0.5) / 0.25 per channel, resized to 16 x 32
    np.testing.assert_allclose(
        cs.tensors[0][0, :, 5, 5],
        [(0 / 255 - 0.5) / 0.25, (100 / 255 - 0.5) / 0.25, (200 / 255 - 0.5) / 0.25],
        rtol=1e-5,
    )
    assert cs.names == ["img0.png", "img1.png"] and cs.describe()["source"].endswith("imgs")


def test_bgr_preprocessing_swaps_channels():
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255
    x = preprocess(img, {**PREP, "color": "BGR"}, (4, 4))
    assert x[2, 0, 0] > x[0, 0, 0]


def test_held_out_images_follow_the_calibration_images(tmp_path):
    _write_images(tmp_path / "imgs", 4)
    held = calibration_set("image", (1, 3, 8, 8), PREP, tmp_path / "imgs", count=2, offset=2)
    assert held.names == ["img2.png", "img3.png"]


def test_default_is_documented_deterministic_synthetic_data():
    a = calibration_set("image", (1, 3, 32, 64), PREP, None, count=2)
    b = calibration_set("image", (1, 3, 32, 64), PREP, None, count=2)
    c = calibration_set("image", (1, 3, 32, 64), PREP, None, count=2, seed=1)
    assert a.source.startswith(DEFAULT_SOURCE) and a.sha256() == b.sha256() != c.sha256()


def test_bad_calibration_inputs_are_one_line_user_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no PNG or JPEG"):
        calibration_set("image", (1, 3, 8, 8), PREP, tmp_path / "empty")
    with pytest.raises(UserError, match="no such folder"):
        calibration_set("image", (1, 3, 8, 8), PREP, tmp_path / "missing")
    with pytest.raises(UserError, match="N x 3 x H x W"):
        calibration_set("x", (1, 8), PREP, None)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image"):
        calibration_set("image", (1, 3, 8, 8), PREP, tmp_path / "broken")


@pytest.mark.parametrize(
    "prep, words",
    [
        ({"mean": "abc"}, "mean 'abc'"),
        ({"std": [0, 1, 1]}, "must not be 0"),
        ({"mean": [1, 2]}, "one or three"),
        ({"scale": -1}, "scale -1"),
        ({"color": "CMYK"}, "RGB or BGR"),
        (["x"], "JSON object"),
    ],
)
def test_bad_preprocessing_metadata_is_one_line(prep, words):
    with pytest.raises(UserError, match=words):
        calibration_set("image", (1, 3, 32, 32), prep, None, count=1)
