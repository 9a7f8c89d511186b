"""The shipped reference net: its recipe is complete and its validation mIoU reproduces from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploycc.core.loader import load_model
from deploycc.core.metadata import preprocessing_of
from deploycc.data import open_dataset
from deploycc.data.synth import write_split
from deploycc.models import resolve_arch
from deploycc.verify.evaluate import OnnxReference, evaluate, model_io

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo" / "trained"


@pytest.fixture(scope="module")
def net():
    model = load_model(ZOO / "street_ref.onnx")
    meta = {p.key: p.value for p in model.metadata_props}
    return model, json.loads(meta["deploycc.training"])


def test_recipe_names_command_data_and_score(net):
    _model, recipe = net
    assert recipe["command"].startswith("deploycc train models/zoo/trained/street_ref.json --data ")
    assert {"train", "val"} <= set(recipe["data"]) and recipe["data"]["val"]["generator"].startswith(
        "deploycc.data.synth/"
    )
    assert recipe["arch"] == resolve_arch(ZOO / "street_ref.json").to_dict()
    assert (ZOO / "street_ref.onnx").stat().st_size < 8e6


def test_validation_miou_reproduces_from_the_recipe(tmp_path, net):
    model, recipe = net
    val = recipe["data"]["val"]
    write_split(tmp_path, "val", val["n"], tuple(val["size"]), val["seed"])
    session = OnnxReference(model, threads=recipe["config"]["threads"])
    result = evaluate(session, model_io(session, "street_ref"), open_dataset(tmp_path, "val"), preprocessing_of(model))
    assert result["accuracy"]["miou"] == pytest.approx(recipe["validation"]["miou"], abs=1e-6)
    assert result["accuracy"]["iou"] == pytest.approx(recipe["validation"]["iou"], abs=1e-6)
