"""FusedChain: a fuse group compiled as one PrimFunc is scheduled band by band (not left as naive
loops) and computes what ONNX Runtime computes, on inverted residuals with awkward shapes (odd
widths, dilated and strided depthwise convs, grouped 1x1 convs, bands that do not divide the
height) and for each vector width a target can have."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_model

tvm = pytest.importorskip("tvm")
ort = pytest.importorskip("onnxruntime")

from deploycc.passes import FuseGroups, PassContext, run_passes  # noqa: E402
from deploycc.targets import Target  # noqa: E402
from deploycc.targets.tvm import cpu_schedules as cs  # noqa: E402
from deploycc.targets.tvm import fusion  # noqa: E402
from deploycc.targets.tvm.fused_chain import FusedChain, band_rows  # noqa: E402

HOST = {"kind": "llvm", "num-cores": 2}
CPU = Target(
    "cpu-test", "tvm", "fp32", hardware={"peak_ops": {"fp32": 195e9}, "dram_bandwidth": 25e9, "onchip_memory": 1 << 20}
)


def unit(c: int, e: int, h: int, w: int, dw: str = "pads=[1,1,1,1]", group: int = 1):
    """x -> 1x1 expand (grouped) -> relu -> 3x3 depthwise (``dw`` attributes) -> relu -> 1x1 project (+ x)."""
    stride = 2 if "strides=[2,2]" in dw else 1
    oh, ow = -(-h // stride), -(-w // stride)
    residual = stride == 1
    text = f"""<ir_version: 8, opset_import: ["" : 17]>
    g (float[1,{c},{h},{w}] x) => (float[1,{c},{oh},{ow}] y) {{
      a = Conv<group={group}>(x, w1, b1)
      r = Relu(a)
      d = Conv<{dw}, group={e}>(r, w2, b2)
      r2 = Relu(d)
      {"p = Conv(r2, w3, b3)" if residual else "y = Conv(r2, w3, b3)"}
      {"y = Add(p, x)" if residual else ""}
    }}"""
    weights = {"w1": (e, c // group, 1, 1), "b1": (e,), "w2": (e, 1, 3, 3), "b2": (e,), "w3": (c, e, 1, 1), "b3": (c,)}
    return make_model(text, weights, seed=c * 100 + w)


CASES = {
    "plain": unit(8, 24, 20, 30),
    "odd_width": unit(5, 15, 13, 19),
    "dilated": unit(8, 16, 18, 26, dw="pads=[2,2,2,2], dilations=[2,2]"),
    "strided": unit(8, 16, 16, 24, dw="pads=[1,1,1,1], strides=[2,2]"),
    "grouped": unit(8, 16, 12, 20, group=2),
}


def planned(model):
    out, _ = run_passes(model, [FuseGroups(PassContext(CPU))], verify=False)
    plan = json.loads({p.key: p.value for p in out.metadata_props}["deploycc.fusion_plan"])
    assert plan["groups"], "the cost model planned no group for the unit"
    return out


def compile_and_run(model, facts: cs.CPUFacts, x: np.ndarray) -> tuple[np.ndarray, dict]:
    from tvm import relax

    target = tvm.target.Target(HOST)
    mod, fused = fusion.import_onnx(model)
    report: dict = {}
    ex = fusion.build(mod, target, fused, cs.pipeline(target, facts, report, fuse=False))
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy(), report


def _fused_chain_applies(model, name: str) -> bool:
    from tvm import s_tir

    mod, _ = fusion.import_onnx(model)
    return FusedChain(cs.CPUFacts()).schedule_func(s_tir.Schedule(mod[name]), False) is not None


def ort_run(model, x):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options).run(None, {"x": x})[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_unit_is_scheduled_and_matches_onnxruntime(case):
    model = planned(CASES[case])
    x = (
        np.random.default_rng(1)
        .standard_normal(tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim))
        .astype(np.float32)
    )
    got, report = compile_and_run(model, cs.CPUFacts(8, 1 << 20), x)
    fused_names = [n for n in report["default"] if n.startswith("deploycc_")]
    assert fused_names and report["unscheduled"] == []
    assert all(_fused_chain_applies(model, name) for name in fused_names)
    np.testing.assert_allclose(got, ort_run(model, x), rtol=1e-4, atol=1e-4)


def test_a_group_of_one_conv_after_an_add_is_scheduled_not_left_naive():
    text = """<ir_version: 8, opset_import: ["" : 17]>
    g (float[1,16,24,40] x, float[1,16,24,40] z) => (float[1,32,24,40] y) {
      s = Add(x, z)
      c = Conv<pads=[1,1,1,1]>(s, w)
      y = Relu(c) }"""
    model = planned(make_model(text, {"w": (32, 16, 3, 3)}))
    from tvm import relax

    target = tvm.target.Target(HOST)
    mod, fused = fusion.import_onnx(model)
    [name] = [gv.name_hint for gv, _ in mod.functions_items() if gv.name_hint.startswith("deploycc_")]
    assert _fused_chain_applies(model, name)
    ex = fusion.build(mod, target, fused, cs.pipeline(target, cs.CPUFacts(), fuse=False))
    rng = np.random.default_rng(4)
    x, z = (rng.standard_normal((1, 16, 24, 40)).astype(np.float32) for _ in range(2))
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(z)).numpy()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), options).run(None, {"x": x, "z": z})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lanes", [4, 16])
def test_other_vector_widths_and_tiny_caches_compute_the_same(lanes):
    model = planned(CASES["odd_width"])
    x = np.random.default_rng(2).standard_normal((1, 5, 13, 19)).astype(np.float32)
    got, _ = compile_and_run(model, cs.CPUFacts(lanes, 4096), x)
    np.testing.assert_allclose(got, ort_run(model, x), rtol=1e-4, atol=1e-4)


def test_rule_leaves_single_convolutions_to_window_reduction():
    from tvm import s_tir
    from tvm.relax.frontend.onnx import from_onnx

    text = """<ir_version: 8, opset_import: ["" : 17]>
    g (float[1,4,8,8] x) => (float[1,4,8,8] y) { c = Conv<pads=[1,1,1,1]>(x, w)
      y = Relu(c) }"""
    mod = tvm.relax.transform.LegalizeOps()(
        from_onnx(make_model(text, {"w": (4, 4, 3, 3)}), keep_params_in_input=False)
    )
    prims = [f for _, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)]
    rule = FusedChain(cs.CPUFacts())
    assert prims and all(rule.schedule_func(s_tir.Schedule(f), False) is None for f in prims)


def test_band_rows_fit_the_budget_and_divide_the_height():
    from tvm import s_tir

    mod, _ = fusion.import_onnx(planned(CASES["plain"]))
    [name] = [gv.name_hint for gv, _ in mod.functions_items() if gv.name_hint.startswith("deploycc_")]
    sch = s_tir.Schedule(mod[name])
    big, small = band_rows(sch, 1 << 30), band_rows(sch, 1)
    assert big == 20 and 20 % small == 0 and small <= big


def test_a_group_whose_band_outgrows_the_chip_is_left_unfused_with_its_reason():
    model = planned(CASES["plain"])  # expansion 24 x 30 columns x 4 B: 2880 B a row, 23 kB a band of 8
    _, kept = fusion.import_onnx(model, onchip_bytes=1 << 20)
    assert len(kept.groups) == 1 and kept.split == {}
    mod, split = fusion.import_onnx(model, onchip_bytes=4096)
    assert split.groups == [] and list(split.split) == ["fg0"]
    assert "a band of 8 full-width rows needs" in split.split["fg0"] and "on chip" in split.split["fg0"]
    assert not any(gv.name_hint.startswith("deploycc_") for gv, _ in mod.functions_items())
    x = np.random.default_rng(3).standard_normal((1, 8, 20, 30)).astype(np.float32)
    from tvm import relax

    ex = fusion.build(mod, tvm.target.Target(HOST), split, cs.pipeline(tvm.target.Target(HOST), cs.CPUFacts()))
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got, ort_run(model, x), rtol=1e-4, atol=1e-4)
