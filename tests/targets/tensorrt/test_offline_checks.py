"""What TensorRT will read is checked here: model.onnx vs FP32, calib.cache vs the Q/DQ model's
scales, and INT8 simulated from the cache's own scales vs the Q/DQ model (exactly); a wrong cache is caught."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import run_cli

from deploycc.core.loader import graph_inputs
from deploycc.core.numerics import random_feeds, value_specs
from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.tensorrt.calib_cache import parse_cache, qdq_activation_scales
from deploycc.targets.tensorrt.offline_checks import _ranges, _simulation


def test_int8_bundle_records_the_offline_checks_and_a_wrong_cache_fails_them(net_onnx, tmp_path):
    out = tmp_path / "net.xavier-int8"
    assert run_cli(["build", net_onnx, "--target", "xavier-int8", "-o", out]) == 0
    m = read_manifest(out)
    checks = m["trt_offline_checks"]
    assert checks["failures"] == []
    assert {k: c["status"] for k, c in checks.items() if k != "failures"} == {
        "model_onnx": "passed",
        "calib_cache_ranges": "passed",
        "calib_cache_simulation": "passed",
    }
    assert checks["calib_cache_simulation"]["quantizers_from_cache"] >= 5
    assert checks["calib_cache_simulation"]["worst_max_abs"] == 0.0  # same scales, same graph, same bits
    # one scale off by one float32 step in the cache: both cache checks fail, naming the tensor
    _, scales = parse_cache((out / "calib.cache").read_text())
    model, qdq = onnx.load(str(out / "model.onnx")), onnx.load(str(out / "model.qdq.onnx"))
    name = next(n for n in scales if n not in [i.name for i in model.graph.input])
    wrong = {**scales, name: float(np.nextafter(np.float32(scales[name]), np.float32(1)))}
    expected = qdq_activation_scales(model, qdq)
    assert _ranges(scales, expected)["status"] == "passed"
    bad = _ranges(wrong, expected)
    assert bad["status"] == "failed" and bad["message"].startswith(f"{name}: cache")
    feeds = [random_feeds(value_specs(graph_inputs(qdq)), 1)]
    assert _simulation(model, qdq, scales, feeds)["status"] == "passed"
    way_off = {n: v * 8 for n, v in scales.items()}  # every range 8x too wide: coarse INT8
    assert _simulation(model, qdq, way_off, feeds)["status"] == "failed"
    missing = {n: v for n, v in scales.items() if n != name}
    assert "missing from the cache" in _ranges(missing, expected)["message"]


def test_fp16_bundle_checks_model_onnx_and_says_why_the_cache_checks_did_not_run(net_onnx, tmp_path):
    out = tmp_path / "net.xavier-fp16"
    assert run_cli(["build", net_onnx, "--target", "xavier-fp16", "-o", out]) == 0
    checks = read_manifest(out)["trt_offline_checks"]
    assert checks["model_onnx"]["status"] == "passed"
    assert checks["calib_cache_ranges"]["status"] == "not_run" and checks["calib_cache_ranges"]["reason"]
    assert np.isfinite(checks["model_onnx"]["worst_max_abs"])


def test_dla_bundle_shares_scales_in_the_q_dq_model_and_the_cache_and_checks_both(net_onnx, tmp_path):
    """xavier-dla-int8 sets int8_equal_input_ranges: the inputs of each Add share the largest of
    their scales in the Q/DQ model the build verifies, and the cache holds exactly those scales, so
    both cache checks run (the simulation too) and pass."""
    out = tmp_path / "net.xavier-dla-int8"
    assert run_cli(["build", net_onnx, "--target", "xavier-dla-int8", "-o", out]) == 0
    m = read_manifest(out)
    checks = m["trt_offline_checks"]
    assert checks["failures"] == [] and checks["calib_cache_ranges"]["status"] == "passed"
    assert checks["calib_cache_simulation"]["status"] == "passed"
    assert checks["calib_cache_simulation"]["worst_max_abs"] == 0.0
    assert m["quantization"]["shared_input_scales"]["ops"][0] == "Add"
    _, scales = parse_cache((out / "calib.cache").read_text())
    assert scales["r1"] == scales["r2"]  # s = Add(r1, r2) in the small net


@pytest.mark.parametrize("target", ["xavier-int8", "xavier-dla-int8"])
def test_layers_kept_out_of_int8_are_float_in_the_qdq_model_and_fp16_for_tensorrt(net_onnx, tmp_path, target):
    """--max-miou-drop keeps the most sensitive layers out of INT8: their weights stay float in
    model.qdq.onnx, trtexec gets them as FP16 layers, the budget was fitted with them in FP16 (what
    the engine runs), and the cache still holds exactly the Q/DQ model's scales (the simulation is
    exact), with the DLA's shared element-wise scales intact."""
    out = tmp_path / f"net.{target}"
    args = ["build", net_onnx, "--target", target, "-o", out, "--max-miou-drop", "8", "--calib-method", "entropy"]
    assert run_cli(args) == 0
    m = read_manifest(out)
    q, checks = m["quantization"], m["trt_offline_checks"]
    assert q["excluded"] and q["budget"]["float_layers_in"] == "fp16" and q["budget"]["met"]
    qdq = onnx.load(str(out / "model.qdq.onnx"))
    floats = {t.name for t in qdq.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    by_name = {n.name: n for n in qdq.graph.node}
    for name in q["excluded"]:
        node = by_name[name]  # ORT keeps the name of a node it leaves in float
        assert node.op_type != "Conv" or node.input[1] in floats  # a float weight, no DequantizeLinear
        assert f"{name}:fp16" in m["backend_info"]["commands"]["trtexec"]
    quantized_convs = [n for n in qdq.graph.node if n.op_type == "Conv" and n.name not in q["excluded"]]
    assert all(n.input[1] not in floats for n in quantized_convs)
    assert checks["failures"] == [] and checks["calib_cache_ranges"]["status"] == "passed"
    assert checks["calib_cache_simulation"]["status"] == "passed"
    assert checks["calib_cache_simulation"]["worst_max_abs"] == 0.0
    _, scales = parse_cache((out / "calib.cache").read_text())
    if target == "xavier-dla-int8" and "add4" not in q["excluded"]:
        assert scales["r1"] == scales["r2"]  # s = Add(r1, r2): one scale for the DLA
