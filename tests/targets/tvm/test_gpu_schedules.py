"""deploycc's GPU schedules (targets/tvm/gpu_schedules.py) on a golden model with a 1x1 feature map.

ONE_BY_ONE ends in the shape a zoo net's tail has at its smallest input (mac_xlarge at 16x16, fbnet_a
at 32x32): a depthwise and a grouped convolution on a 1x1 map. TVM's own rule list stops on it
(dlight GEMV's ``assert s_loops``); deploycc's rule list schedules it, the scheduled kernels
compute what ONNX Runtime computes (run here on the CPU with their GPU thread loops made
serial), and the model builds for every GPU target.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from helpers import make_model, run_cli

from deploycc.pipeline.artifact import read_manifest

ONE_BY_ONE = """<ir_version: 8, opset_import: ["" : 17]>
one_by_one (float[1,8,4,4] x) => (float[1,8,1,1] y)
{ w = Conv<group=8, pads=[2,2,2,2], kernel_shape=[5,5]>(x, dw)
  p = GlobalAveragePool(w)
  d = Conv<group=8, pads=[2,2,2,2], kernel_shape=[5,5]>(p, dw)
  r = Relu(d)
  y = Conv<group=2, kernel_shape=[1,1]>(r, gw) }"""
WEIGHTS = {"dw": (8, 1, 5, 5), "gw": (8, 4, 1, 1)}
GPU_TARGETS = ["h100", "v100", "k20", "mali-t628"]
CUDA = {"kind": "cuda", "arch": "sm_90"}


def _fused_module(model):
    """The model as TVM's GPU pipeline has it just before scheduling: legalized and fused."""
    import tvm
    from tvm import relax

    from deploycc.targets.tvm.fusion import import_onnx

    mod, _ = import_onnx(model, False)
    with tvm.target.Target(CUDA):
        return tvm.transform.Sequential(
            [
                relax.transform.LegalizeOps(),
                relax.transform.AnnotateTIROpPattern(),
                relax.transform.FoldConstant(),
                relax.transform.FuseOps(),
                relax.transform.FuseTIR(),
            ]
        )(mod)


def _primfuncs(mod):
    import tvm

    return [(gv, f) for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]


def test_tvm_default_rules_stop_on_the_golden_model():
    """The golden model reproduces the failure the rule exists for (if TVM fixes GEMV, this says so)."""
    import tvm
    from tvm.s_tir import dlight

    mod = _fused_module(make_model(ONE_BY_ONE, WEIGHTS))
    default = dlight.ApplyDefaultSchedule(
        dlight.gpu.Matmul(), dlight.gpu.GEMV(), dlight.gpu.Reduction(), dlight.gpu.Fallback()
    )
    with tvm.target.Target(CUDA), pytest.raises(AssertionError):
        default(mod)


def test_rule_takes_the_1x1_convolutions_and_nothing_else():
    import tvm

    from deploycc.targets.tvm.gpu_schedules import independent_dots_rule

    mod = _fused_module(make_model(ONE_BY_ONE, WEIGHTS))
    rule, target = independent_dots_rule(), tvm.target.Target(CUDA)
    taken = {gv.name_hint: rule.apply(f.with_attr("target", target), target, False) for gv, f in _primfuncs(mod)}
    taken = {name: sch is not None for name, sch in taken.items()}
    # the 4x4 depthwise conv (GEMV schedules it) and the mean are left to dlight's rules
    assert sorted(taken.values()) == [False, False, True, True], taken


def _serial(func):
    """``func`` with every GPU thread loop made a serial loop, for the CPU."""
    import tvm

    text = re.sub(r'T\.thread_binding\(([^,]+), thread="[^"]+"\)', r"T.serial(\1)", func.script())
    assert "thread_binding" not in text
    return tvm.script.from_source(text).without_attr("target")


def test_scheduled_kernels_compute_what_onnxruntime_computes():
    import onnxruntime as ort
    import tvm
    from tvm import relax

    from deploycc.targets.tvm.gpu_schedules import independent_dots_rule

    model = make_model(ONE_BY_ONE, WEIGHTS)
    mod = _fused_module(model)
    rule, target = independent_dots_rule(), tvm.target.Target(CUDA)
    replaced = 0
    for gv, f in _primfuncs(mod):
        sch = rule.apply(f.with_attr("target", target), target, False)
        if sch is not None:
            mod[gv] = _serial(sch.mod["main"])
            replaced += 1
    assert replaced == 2
    x = np.random.default_rng(1).standard_normal((1, 8, 4, 4)).astype(np.float32)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", GPU_TARGETS)
def test_golden_model_builds_for_every_gpu_target(target, tmp_path):
    if target == "mali-t628" and shutil.which("arm-linux-gnueabihf-gcc") is None:
        pytest.skip("arm-linux-gnueabihf-gcc is not installed (make cross-tools installs it)")
    path = tmp_path / "one_by_one.onnx"
    import onnx

    onnx.save(make_model(ONE_BY_ONE, WEIGHTS), path)
    out = tmp_path / "art"
    assert run_cli(["build", path, "--target", target, "-o", out]) == 3  # built; runs on the device
    assert read_manifest(out)["verification"]["status"] == "not_run"
