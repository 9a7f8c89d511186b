"""cpu-int8: the Q/DQ model on ONNX Runtime's INT8 kernels, verified against FP32 on held-out images."""

from __future__ import annotations

from collections import Counter

import onnx
import pytest
from helpers import run_cli
from PIL import Image

from deploycc.core.errors import UserError
from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.onnxruntime import int8_cpu
from deploycc.targets.onnxruntime.backend import ORTBackend


def test_cpu_int8_build_is_int8_and_verified(net_onnx, tmp_path):
    out = tmp_path / "net.cpu-int8"
    assert run_cli(["build", net_onnx, "--target", "cpu-int8", "-o", out, "--calib-method", "percentile"]) == 0
    m = read_manifest(out)
    v = m["verification"]
    assert v["ok"] and all(o["argmax_agreement"] >= 0.97 for o in v["outputs"]) and len(v["outputs"]) == 2
    assert m["quantization"]["config"]["method"] == "percentile"
    err = m["quantization"]["error"]  # what INT8 costs against FP32, reported
    assert 0 < err["rel_l2"] < 0.2 and err["cosine_min"] > 0.98 and err["miou_drop"] >= 0
    assert v["reference"].endswith("the Q/DQ model")
    assert m["quantization"]["placement_exclusions"] == ["resize6"]  # full-size tail stays float
    ops = Counter(n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node)
    assert ops["QLinearConv"] == 3  # ORT fused the Q/DQ convs into INT8 kernels


def test_calibration_folder_is_recorded(net_onnx, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.effect_noise((128, 64), 40 + 10 * i).convert("RGB").save(images / f"{i}.png")
    out = tmp_path / "net.int8"
    assert (
        run_cli(["build", net_onnx, "--target", "cpu-int8", "-o", out, "--calib-data", images, "--calib-images", "2"])
        == 0
    )
    cal = read_manifest(out)["quantization"]["calibration"]
    assert cal["source"] == str(images) and cal["names"] == ["0.png", "1.png"]
    assert cal["preprocessing_source"].startswith("default")


def test_bad_calibration_folder_leaves_nothing(net_onnx, tmp_path, capsys):
    out = tmp_path / "net.int8"
    assert run_cli(["build", net_onnx, "--target", "cpu-int8", "-o", out, "--calib-data", tmp_path / "nope"]) == 2
    assert "no such folder" in capsys.readouterr().err and not out.exists()


def test_kernel_choice_is_recorded_and_the_artifact_reproducible(net_onnx, tmp_path):
    """On x86 without VNNI the artifact holds ORT's u8 rewrite of the weights (exact u8u8 kernels);
    on a VNNI CPU its s8 weights (u8s8 kernels). Either way two builds give the same bytes."""
    outs = [tmp_path / f"net{i}.int8" for i in range(2)]
    for out in outs:
        assert run_cli(["build", net_onnx, "--target", "cpu-int8", "-o", out]) == 0
    m = read_manifest(outs[0])
    host = int8_cpu.host_int8_kernels().to_dict()
    assert m["backend_info"]["int8_kernels"] == host and m["verification"]["int8_kernels"] == host
    assert (outs[0] / "model.onnx").read_bytes() == (outs[1] / "model.onnx").read_bytes()
    model = onnx.load(str(outs[0] / "model.onnx"))
    inits = {t.name: t.data_type for t in model.graph.initializer}
    weights = {inits[n.input[3]] for n in model.graph.node if n.op_type == "QLinearConv"}
    assert weights == {onnx.TensorProto.UINT8 if host["x64quantprecision"] else onnx.TensorProto.INT8}


def test_u8s8_artifact_is_refused_where_those_kernels_saturate(tmp_path, monkeypatch):
    monkeypatch.setattr(int8_cpu, "host_int8_kernels", lambda: int8_cpu.choose("x86_64", {"avx2"}))
    vnni = int8_cpu.choose("x86_64", {"avx2", "avx_vnni"}).to_dict()
    manifest = {"target": {"precision": "int8"}, "backend_info": {"int8_kernels": vnni}}
    with pytest.raises(UserError, match=r"avx_vnni.*would saturate them: rebuild"):
        ORTBackend().load(tmp_path, manifest)
    with pytest.raises(UserError, match="not recorded"):  # built before the record existed
        ORTBackend().load(tmp_path, {"target": {"precision": "int8"}, "backend_info": {}})
