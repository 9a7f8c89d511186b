"""The shipped target files: they load, carry the seed figures, and print their ops per byte."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from deploycc.targets import list_targets, load_target

REQUIRED = ["xavier-int8", "xavier-fp16", "xavier-dla-int8", "kirin970-npu", "arm64-cpu", "h100", "cpu-int8"]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_targets_load(name):
    t = load_target(name)
    assert t.name == name and t.backend in ("tensorrt", "tvm", "ort", "nnapi") and t.passes[0] == "fold-bn"


@pytest.mark.parametrize(
    "name, ratio",
    [
        ("xavier-int8", 30e12 / 137e9),
        ("kirin970-npu", 1.92e12 / 30e9),
        ("v100", 112e12 / 900e9),
        ("k20", 3.5e12 / 208e9),
        ("mali-t628", 120e9 / 12.8e9),
    ],
)
def test_seed_figures_give_the_ops_per_byte(name, ratio):
    assert load_target(name).ops_per_byte() == pytest.approx(ratio)


def test_dla_target_has_the_toolchain_limits():
    leg = load_target("xavier-dla-int8").legality
    assert leg["accelerator"] == "DLA" and leg["fallback"] == "GPU"
    assert leg["conv"]["padding_less_than_kernel"] and leg["pool"]["window"] == [1, 8]
    assert leg["resize"]["linear_scale"] == [1, 4] and leg["softmax"]["supported"] is False
    assert "rewrite-dilated" in load_target("xavier-dla-int8").passes
    assert load_target("xavier-dla-int8").settings["tensorrt"]["dla_core"] == 0


def test_targets_command_lists_every_file_with_ops_per_byte(capsys):
    assert run_cli(["targets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["targets"]}
    assert set(REQUIRED) <= set(rows) and len(rows) == len(list_targets())
    assert rows["xavier-dla-int8"]["ops_per_byte"] == pytest.approx(219.0, abs=0.1)
