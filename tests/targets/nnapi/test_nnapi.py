"""kirin970-npu: the model for ONNX Runtime's NNAPI EP on the phone, with its NPU/CPU placement."""

from __future__ import annotations

import json

import numpy as np
from helpers import run_cli

from deploycc.pipeline.artifact import read_manifest


def test_npu_artifact_states_the_phone_step_and_placement(net_onnx, tmp_path, capsys):
    out = tmp_path / "net.kirin"
    assert run_cli(["build", net_onnx, "--target", "kirin970-npu", "-o", out]) == 0
    m = read_manifest(out)
    assert m["remaining"] and "NnapiExecutionProvider" in m["remaining"][0]["what"]
    assert m["verification"]["status"] == "passed" and "FP16 simulation" in m["verification"]["subject"]
    report = json.loads((out / "legality.json").read_text())
    resize = next(n for n in report["nodes"] if n["op"] == "Resize")
    assert resize["unit"] == "CPU" and "half_pixel" in resize["reasons"][0]  # NNAPI 1.1: asymmetric only
    capsys.readouterr()
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 64, 128), np.float32))
    assert run_cli(["run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"]) == 2
    assert "run it on the phone" in capsys.readouterr().err


FP16_OVERFLOW = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,8,8] image) => (float[1,4,8,8] logits)
{ c = Conv(image, w)
  logits = Mul(c, k) }"""


def test_fp16_target_is_verified_in_fp16_not_fp32(tmp_path, capsys):
    """A graph whose activations leave float16's range (65504) is exact in FP32 and wrong on an
    FP16 NPU: the FP16 simulation catches it, an FP32 check would not."""
    import onnx
    from helpers import make_model

    model = make_model(FP16_OVERFLOW, {"w": (4, 3, 1, 1)})
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([1e6], np.float32), "k"))
    onnx.save(model, tmp_path / "big.onnx")
    assert run_cli(["build", tmp_path / "big.onnx", "--target", "kirin970-npu", "-o", tmp_path / "big.kirin"]) == 1
    assert "numerical verification failed on target kirin970-npu" in capsys.readouterr().err
    assert run_cli(["build", tmp_path / "big.onnx", "--target", "cpu-ort", "-o", tmp_path / "big.cpu"]) == 0
