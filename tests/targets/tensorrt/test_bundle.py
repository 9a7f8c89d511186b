"""xavier-int8 / xavier-dla-int8 / xavier-fp16: the device-ready bundle, and the engine where possible."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import run_cli
from onnx import numpy_helper

from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.onnxruntime import int8_cpu
from deploycc.targets.tensorrt import engine as trt_engine
from deploycc.targets.tensorrt.calib_cache import parse_cache

NO_ENGINE = trt_engine.unavailable()


def _build(net_onnx, tmp_path, target, *extra):
    out = tmp_path / f"net.{target}"
    assert run_cli(["build", net_onnx, "--target", target, "-o", out, "--json", *extra]) == 0
    return out, read_manifest(out)


@pytest.mark.skipif(NO_ENGINE is None, reason="TensorRT and a GPU are present: the engine is built instead")
def test_int8_bundle_has_everything_the_jetson_needs(net_onnx, tmp_path, capsys):
    out, m = _build(net_onnx, tmp_path, "xavier-dla-int8")
    assert {"model.onnx", "model.qdq.onnx", "calib.cache", "legality.json"} <= set(m["files"])
    step = m["remaining"][0]
    assert step["command"] == f"deploycc build --resume {out}"
    assert "--int8 --calib=calib.cache --useDLACore=0 --allowGPUFallback" in step["trtexec"]
    assert m["verification"]["ok"] and "model.qdq.onnx" in m["verification"]["subject"]
    assert m["quantization"]["calibration"]["source"].startswith("synthetic street scenes")
    header, _scales = parse_cache((out / "calib.cache").read_text())
    assert header["version"] == 8502 and header["calibrator"] == "EntropyCalibration2"
    ranges = json.loads(capsys.readouterr().out)  # the build summary is valid JSON (no stray prints)
    assert ranges["remaining"]
    # The host proxy picks exact ORT kernels for this CPU; the device's Q/DQ model keeps full
    # 8-bit symmetric weights (each channel's largest |w| at 127) on every host.
    assert m["verification"]["int8_kernels"] == int8_cpu.host_int8_kernels().to_dict()
    qdq = onnx.load(str(out / "model.qdq.onnx"))
    weights = [numpy_helper.to_array(t).astype(int) for t in qdq.graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.INT8 for t in qdq.graph.initializer if len(t.dims) == 4)
    assert all(np.abs(w).reshape(len(w), -1).max(1).tolist() == [127] * len(w) for w in weights)


def test_calibration_cache_scales_are_the_q_dq_models(net_onnx, tmp_path, capsys):
    """The cache holds, for the input and every node output, the scale the bundle's Q/DQ model
    quantizes that tensor with (a Relu's input: the Relu's range, as ORT's quantizer moves it)."""
    from deploycc.quantize.qdq import ranges_cache, ranges_of

    out, m = _build(net_onnx, tmp_path, "xavier-int8")
    ranges = ranges_of(ranges_cache().get(m["quantization"]["ranges_key"]))
    _, scales = parse_cache((out / "calib.cache").read_text())
    assert len(scales) == 8  # the input and every node output
    qdq = onnx.load(str(out / "model.qdq.onnx"))
    values = {t.name: numpy_helper.to_array(t) for t in qdq.graph.initializer}
    for q in (n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in values):
        name = q.input[0].removesuffix("_QuantizeLinear_Input")  # ORT renames the graph output it quantizes
        assert scales[name] == np.float32(values[q.input[1]])
    assert scales["c1"] == np.float32(max(abs(v) for v in ranges["r1"]) / 127)  # c1 -> Relu -> r1


def test_fp16_bundle_has_no_int8_files(net_onnx, tmp_path):
    _out, m = _build(net_onnx, tmp_path, "xavier-fp16")
    assert "calib.cache" not in m["files"] and m["backend_info"]["plan"]["fp16"]
    assert "--fp16" in m["backend_info"]["commands"]["trtexec"]


def test_max_miou_drop_becomes_layer_precisions(net_onnx, tmp_path):
    # the budget mechanism on the calibration this test was written for (the target now uses percentile)
    _out, m = _build(net_onnx, tmp_path, "xavier-int8", "--max-miou-drop", "8", "--calib-method", "entropy")
    q = m["quantization"]
    assert len(q["sensitivity"]) == 5 and q["budget"]["met"] and q["budget"]["miou_drop"] <= 8
    assert 1 <= len(q["excluded"]) <= 5 and q["budget"]["trials"][0]["miou_drop"] > 8
    for name in q["excluded"]:
        assert f"{name}:fp16" in m["backend_info"]["commands"]["trtexec"]


@pytest.mark.skipif(NO_ENGINE is None, reason="TensorRT and a GPU are present here")
def test_running_or_resuming_without_tensorrt_is_one_sentence(net_onnx, tmp_path, capsys):
    out, _ = _build(net_onnx, tmp_path, "xavier-int8")
    capsys.readouterr()
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 64, 128), np.float32))
    assert run_cli(["run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and "Traceback" not in err and len(err.splitlines()) <= 2
    assert run_cli(["build", "--resume", out]) == 2
    err = capsys.readouterr().err
    assert "cannot build the TensorRT engine here" in err and "trtexec is not installed" in err
    assert "Traceback" not in err
    assert read_manifest(out)["remaining"]  # the bundle is untouched


@pytest.mark.gpu
@pytest.mark.skipif(NO_ENGINE is not None, reason=f"needs TensorRT and an NVIDIA GPU: {NO_ENGINE}")
def test_engine_is_built_and_verified_where_tensorrt_runs(net_onnx, tmp_path):
    _out, m = _build(net_onnx, tmp_path, "xavier-int8")
    assert "model.engine" in m["files"] and m["verification"]["ok"] and not m["remaining"]


def test_resume_refuses_what_is_not_an_unfinished_bundle(net_onnx, tmp_path, capsys):
    out = tmp_path / "net.ort"
    assert run_cli(["build", net_onnx, "--target", "cpu-ort", "-o", out]) == 0
    capsys.readouterr()
    assert run_cli(["build", "--resume", out]) == 2
    assert "not an unfinished TensorRT bundle" in capsys.readouterr().err
    assert run_cli(["build", net_onnx, "--resume", out]) == 2
    assert "takes no MODEL" in capsys.readouterr().err
    assert run_cli(["build", "--resume", tmp_path / "missing"]) == 2
