"""What TensorRT will read is checked here: model.onnx vs FP32, calib.cache vs the Q/DQ ranges, and
INT8 simulated from the cache's own scales vs the Q/DQ model; a wrong cache is caught."""

from __future__ import annotations

import numpy as np
import onnx
from helpers import run_cli

from deploycc.core.loader import graph_inputs
from deploycc.core.numerics import Tolerance, random_feeds, value_specs
from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.tensorrt.calib_cache import parse_cache, scales_from_ranges
from deploycc.targets.tensorrt.offline_checks import _ranges, _simulation


def test_int8_bundle_records_the_offline_checks_and_a_wrong_cache_fails_them(net_onnx, tmp_path):
    from deploycc.quantize.qdq import ranges_cache, ranges_of

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
    # one scale off by 2x in the cache: both cache checks fail, naming the tensor
    _, scales = parse_cache((out / "calib.cache").read_text())
    ranges = ranges_of(ranges_cache().get(m["quantization"]["ranges_key"]))
    name = next(n for n in scales if n not in [i.name for i in onnx.load(str(out / "model.onnx")).graph.input])
    wrong = {**scales, name: scales[name] * 2}
    expected = scales_from_ranges(onnx.load(str(out / "model.onnx")), ranges)
    assert _ranges(scales, expected)["status"] == "passed"
    bad = _ranges(wrong, expected)
    assert bad["status"] == "failed" and bad["message"].startswith(f"{name}: cache")
    qdq = onnx.load(str(out / "model.qdq.onnx"))
    feeds = [random_feeds(value_specs(graph_inputs(qdq)), 1)]
    tol = Tolerance.of(m["target"]["verify"])
    assert _simulation(qdq, scales, feeds, tol)["status"] == "passed"
    way_off = {n: v * 8 for n, v in scales.items()}  # every range 8x too wide: coarse INT8
    assert _simulation(qdq, way_off, feeds, tol)["status"] == "failed"


def test_fp16_bundle_checks_model_onnx_and_says_why_the_cache_checks_did_not_run(net_onnx, tmp_path):
    out = tmp_path / "net.xavier-fp16"
    assert run_cli(["build", net_onnx, "--target", "xavier-fp16", "-o", out]) == 0
    checks = read_manifest(out)["trt_offline_checks"]
    assert checks["model_onnx"]["status"] == "passed"
    assert checks["calib_cache_ranges"]["status"] == "not_run" and checks["calib_cache_ranges"]["reason"]
    assert np.isfinite(checks["model_onnx"]["worst_max_abs"])


def test_dla_bundle_shares_scales_across_elementwise_inputs_and_its_checks_gate_the_build(net_onnx, tmp_path):
    """xavier-dla-int8 sets int8_equal_input_ranges: its cache gives the inputs of each Add/Concat
    the largest of their scales on purpose, and the range check expects exactly that."""
    from deploycc.quantize.qdq import ranges_cache, ranges_of
    from deploycc.targets.target import load_target
    from deploycc.targets.tensorrt.backend import equal_input_ops

    out = tmp_path / "net.xavier-dla-int8"
    assert run_cli(["build", net_onnx, "--target", "xavier-dla-int8", "-o", out]) == 0
    m = read_manifest(out)
    checks = m["trt_offline_checks"]
    assert checks["failures"] == [] and checks["calib_cache_ranges"]["status"] == "passed"
    assert (
        checks["calib_cache_simulation"]["status"] == "not_run" and "Add" in checks["calib_cache_simulation"]["reason"]
    )
    _, scales = parse_cache((out / "calib.cache").read_text())
    model = onnx.load(str(out / "model.onnx"))
    ranges = ranges_of(ranges_cache().get(m["quantization"]["ranges_key"]))
    ops = equal_input_ops(load_target("xavier-dla-int8"))
    assert ops and _ranges(scales, scales_from_ranges(model, ranges, ops))["status"] == "passed"
    unshared = scales_from_ranges(model, ranges)  # what a cache ignoring the DLA rule holds
    assert unshared != scales and _ranges(unshared, scales_from_ranges(model, ranges, ops))["status"] == "failed"
