"""The Jetson path without TensorRT's Python bindings: trtexec builds and verifies the engine.

trtexec cannot run here (no TensorRT, no GPU): what is tested is what deploycc hands it and reads
back: the bundle's stored inputs and reference outputs, the exact build and verify command lines,
and the parsing of trtexec's ``--exportOutput`` JSON (in the format its sampleReporting.cpp
writes). The run itself is unchecked on this machine.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.tensorrt import trtexec
from deploycc.targets.tensorrt.engine import EnginePlan, timing_cache_path


def test_the_bundle_stores_what_trtexec_verifies_with(net_onnx, tmp_path):
    out = tmp_path / "net.xavier-int8"
    assert run_cli(["build", net_onnx, "--target", "xavier-int8", "-o", out]) == 0
    m = read_manifest(out)
    assert {"verify/input0.bin", "verify/reference.npz"} <= set(m["files"])  # sealed by their sha256
    spec = m["inputs"][0]
    x = np.fromfile(out / "verify" / "input0.bin", dtype=np.float32).reshape(spec["shape"])
    reference = np.load(out / "verify" / "reference.npz")
    assert set(reference.files) == {o["name"] for o in m["outputs"]}
    # the stored reference is the Q/DQ model's output on the stored input (ORT, optimizations off)
    import onnx

    from deploycc.core.numerics import run_reference

    expected = run_reference(onnx.load(str(out / "model.qdq.onnx")), {spec["name"]: x})
    np.testing.assert_array_equal(reference[m["outputs"][0]["name"]], expected[0])


def test_build_command_carries_int8_dla_timing_cache_and_exports(tmp_path):
    plan = EnginePlan(
        onnx="model.onnx",
        int8="implicit",
        calib_cache="calib.cache",
        dla_core=0,
        gpu_fallback=True,
        fp16_layers=("conv_7",),
        workspace_mib=512,
    )
    cache = timing_cache_path("trtexec-8.5.2", "NVIDIA Jetson AGX Xavier", "trtexec")
    args = trtexec.build_command(plan, cache, trtexec="/usr/src/tensorrt/bin/trtexec")
    assert args[0] == "/usr/src/tensorrt/bin/trtexec"
    for flag in (
        "--onnx=model.onnx",
        "--saveEngine=model.engine",
        f"--timingCacheFile={cache}",
        "--int8",
        "--calib=calib.cache",
        "--useDLACore=0",
        "--allowGPUFallback",
        "--fp16",
        "--precisionConstraints=obey",
        "--layerPrecisions=conv_7:fp16",
        "--memPoolSize=workspace:512",
        "--exportLayerInfo=engine.layers.json",
        "--exportProfile=engine.profile.json",
        "--profilingVerbosity=detailed",
    ):
        assert flag in args, flag
    fp16 = trtexec.build_command(EnginePlan(onnx="model.onnx", fp16=True, gpu_fallback=False), cache)
    assert "--fp16" in fp16 and "--int8" not in fp16 and not any(a.startswith("--useDLACore") for a in fp16)
    verify = trtexec.verify_command({"image": "verify/input0.bin"}, dla_core=0)
    assert "--loadEngine=model.engine" in verify and "--loadInputs=image:verify/input0.bin" in verify
    assert "--exportOutput=verify/engine.outputs.json" in verify and "--useDLACore=0" in verify


def test_export_output_json_is_read_back_exactly(tmp_path):
    # trtexec's writer: '[', then per output '{ "name" : ...', '"dimensions" : "AxB"', '"values" : [ ... ]'
    values = [0.5, -1.25, float("inf"), 3.0, -0.0, float("nan")]
    text = (
        '[\n  { "name" : "logits"\n  ,   "dimensions" : "1x2x3"\n  ,   "values" : [ '
        + ", ".join("inf" if v == float("inf") else "nan" if v != v else repr(v) for v in values)
        + " ]\n  }\n]\n"
    )
    path = tmp_path / "out.json"
    path.write_text(text)
    got = trtexec.read_outputs(path)["logits"]
    assert got.shape == (1, 2, 3)
    np.testing.assert_array_equal(got.ravel(), np.array(values, np.float32))
    path.write_text(text.replace("1x2x3", "1x2x4"))
    with pytest.raises(UserError, match="6 values for dimensions 1x2x4"):
        trtexec.read_outputs(path)
