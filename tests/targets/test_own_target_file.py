"""A target is one TOML file: a user's own board, described in a folder of their own, builds and
verifies, and its figures and rules reach the passes (docs/targets.md, "Adding a target")."""

from __future__ import annotations

import json

import onnx
from helpers import make_model, run_cli

from deploycc.targets import HardwareFigures, load_target

BOARD = """
name = "my-board"
description = "a user's board, described in one file outside the repository"
backend = "ort"
precision = "fp32"
passes = ["fold-bn", "rewrite-dilated"]

[hardware]
peak_ops = { fp32 = 50e9 }
dram_bandwidth = 10e9
onchip_memory = 262144

[legality]
accelerator = "NPU"
fallback = "CPU"
native_dilated_conv = false      # the board runs no dilated conv: rewrite-dilated must remove them

[verify]
atol_rel = 1e-4
rtol = 1e-4
"""

DILATED = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,18,18] image) => (float[1,8,18,18] logits)
{ c = Conv<dilations=[2,2], pads=[2,2,2,2]>(image, w)
  bn = BatchNormalization(c, s, b, m, v)
  logits = Relu(bn) }"""


def _board(tmp_path, text: str = BOARD):
    folder = tmp_path / "my-boards"
    folder.mkdir()
    path = folder / "my-board.toml"
    path.write_text(text)
    return path


def _model(tmp_path):
    path = tmp_path / "dilated.onnx"
    weights = {"w": (8, 4, 3, 3), "s": (8,), "b": (8,), "m": (8,), "v": (8,)}
    onnx.save(make_model(DILATED, weights, positive=("v",)), path)
    return path


def test_a_target_file_in_a_folder_of_ones_own_builds_and_verifies(tmp_path):
    board, out = _board(tmp_path), tmp_path / "artifact"
    assert run_cli(["build", _model(tmp_path), "--target", board, "-o", out]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    # the target file by name: no path of the build machine
    assert manifest["target"]["name"] == "my-board" and manifest["target"]["source"] == board.name
    assert manifest["backend"] == "ort" and manifest["verification"]["ok"]
    passes = {p["name"]: p for p in manifest["passes"]}
    assert list(passes) == ["fold-bn", "rewrite-dilated"]
    convs = passes["rewrite-dilated"]["stats"]["convs"]
    assert [c["action"] for c in convs] == ["rewritten"]  # the file's rule: no native dilated conv


def test_the_files_figures_are_what_the_passes_see(tmp_path):
    target = load_target(_board(tmp_path))
    assert target.figures() == HardwareFigures(
        peak_ops=50e9, dram_bandwidth=10e9, onchip_memory=262144, bytes_per_element=4
    )
    assert target.ops_per_byte() == 5.0


def test_a_target_file_with_an_unknown_key_is_one_line(tmp_path, capsys):
    board = _board(tmp_path, "clock_mhz = 800\n" + BOARD)
    assert run_cli(["build", _model(tmp_path), "--target", board, "-o", tmp_path / "out"]) == 2
    err = capsys.readouterr().err
    assert f"target file {board}: unknown key(s) ['clock_mhz']" in " ".join(err.split())
    assert not (tmp_path / "out").exists()
