"""kirin970-npu: the model for ONNX Runtime's NNAPI EP on the phone, with its NPU/CPU placement."""

from __future__ import annotations

import json

import numpy as np
from helpers import run_cli

from deploycc.build.artifact import read_manifest


def test_npu_artifact_states_the_phone_step_and_placement(net_onnx, tmp_path, capsys):
    out = tmp_path / "net.kirin"
    assert run_cli(["build", net_onnx, "--target", "kirin970-npu", "-o", out]) == 0
    m = read_manifest(out)
    assert m["remaining"] and "NnapiExecutionProvider" in m["remaining"][0]["what"]
    assert m["verification"]["ok"] and "CPU, FP32" in m["verification"]["subject"]
    report = json.loads((out / "legality.json").read_text())
    resize = next(n for n in report["nodes"] if n["op"] == "Resize")
    assert resize["unit"] == "CPU" and "half_pixel" in resize["reasons"][0]   # NNAPI 1.1: asymmetric only
    capsys.readouterr()
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 64, 128), np.float32))
    assert run_cli(["run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"]) == 2
    assert "run it on the phone" in capsys.readouterr().err
