"""Readers: the official label table, layout detection, preprocessing, the bounded prefetch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as official
from PIL import Image

from deploycc.core.errors import UserError
from deploycc.data import open_dataset
from deploycc.data.cityscapes import LABEL_TO_TRAIN, TRAIN_CLASSES, to_train_ids
from deploycc.data.io import prefetch, preprocess


def test_label_table_is_the_official_one():
    for label in official:
        if label.id < 0:
            continue
        expected = label.trainId if 0 <= label.trainId < 255 else 255
        assert LABEL_TO_TRAIN[label.id] == expected, label.name
    assert len(TRAIN_CLASSES) == 19 and TRAIN_CLASSES[0] == "road" and TRAIN_CLASSES[18] == "bicycle"
    assert np.all(LABEL_TO_TRAIN[34:] == -1)


def test_to_train_ids_maps_and_rejects_unknown_values():
    ids = np.array([[7, 8, 1], [26, 0, 33]], np.uint8)  # road, sidewalk, ego vehicle / car, unlabeled, bicycle
    np.testing.assert_array_equal(to_train_ids(ids, "x.png"), [[0, 1, 255], [13, 255, 18]])
    with pytest.raises(UserError, match=r"x.png: label value\(s\) 34, 200"):
        to_train_ids(np.array([34, 200, 7], np.uint8), "x.png")


def test_plain_folder_with_classes_file(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("background\nobject\n")
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "images" / "a.jpg")
    Image.fromarray(np.array([[0, 1, 255, 1, 0, 0]] * 4, np.uint8)).save(tmp_path / "labels" / "a.png")
    ds = open_dataset(tmp_path)
    assert ds.layout == "folder" and ds.num_classes == 2
    image, label = ds.read(ds.samples[0])
    assert image.shape == (4, 6, 3) and label[0, 2] == 255
    Image.fromarray(np.full((4, 6), 2, np.uint8)).save(tmp_path / "labels" / "a.png")
    with pytest.raises(UserError, match=r"a\.png: label value"):
        ds.read(ds.samples[0])
    with pytest.raises(UserError, match="without splits"):
        open_dataset(tmp_path, "val")


def test_missing_folder():
    with pytest.raises(UserError, match="no such data folder"):
        open_dataset("/nonexistent/data")


def test_unreadable_image(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "labels" / "a.png")
    ds = open_dataset(tmp_path)
    with pytest.raises(UserError, match=r"a\.png: cannot read image"):
        ds.read(ds.samples[0])


def test_preprocess_normalizes_resizes_and_swaps_channels():
    image = np.zeros((4, 8, 3), np.uint8)
    image[..., 0], image[..., 2] = 255, 51
    prep = {"mean": [0.5, 0.0, 0.1], "std": [0.5, 1.0, 0.2], "scale": 1 / 255, "color": "RGB"}
    x = preprocess(image, prep, (4, 8))
    assert x.shape == (3, 4, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [1.0, 0.0, (0.2 - 0.1) / 0.2], rtol=1e-6)
    assert preprocess(image, prep, (2, 4)).shape == (3, 2, 4)
    bgr = preprocess(image, {**prep, "color": "BGR"}, (4, 8))
    np.testing.assert_allclose(bgr[0, 0, 0], (0.2 - 0.5) / 0.5, rtol=1e-6)


def test_prefetch_keeps_order_and_stays_bounded():
    ahead = []
    consumed = [0]

    def work(i):
        ahead.append(i - consumed[0])
        return i * i

    out = []
    for value in prefetch(work, range(50), depth=3):
        time.sleep(0.001)
        out.append(value)
        consumed[0] += 1
    assert out == [i * i for i in range(50)]
    assert max(ahead) <= 3 + 1  # the queue plus the item being computed


def test_prefetch_raises_where_the_error_happened_and_stops_early():
    def work(i):
        if i == 3:
            raise UserError("bad item 3")
        return i

    got = []
    with pytest.raises(UserError, match="bad item 3"):
        for value in prefetch(work, range(10)):
            got.append(value)
    assert got == [0, 1, 2]
    before = threading.active_count()
    stream = prefetch(lambda i: i, range(10_000), depth=2)
    next(stream)
    stream.close()
    time.sleep(0.3)
    assert threading.active_count() <= before
