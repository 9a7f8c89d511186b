"""The blocked rule's tuning design space (``BlockedWindow.design_space``, measured by
``tuning``): the default schedule first, every candidate computes what ONNX Runtime computes, and
tuning picks the blocked rule's space for a blocked kernel and ``WindowReduction``'s for an NCHW one."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from helpers import make_model

tvm = pytest.importorskip("tvm")
ort = pytest.importorskip("onnxruntime")

from deploycc.targets.tvm import blocked_layout as bl  # noqa: E402
from deploycc.targets.tvm import cpu_schedules as cs  # noqa: E402
from deploycc.targets.tvm.blocked_window import BlockedWindow, accumulator_registers  # noqa: E402
from deploycc.targets.tvm.tuning import rule_design_space  # noqa: E402

HOST = {"kind": "llvm", "num-cores": 2}
HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
CASES = {
    "dense 3x3, 40 channels": (
        "c = Conv <kernel_shape=[3,3], pads=[1,1,1,1]> (r, w2)",
        {"w2": (40, 24, 3, 3)},
    ),
    "depthwise stride 2": (
        "c = Conv <kernel_shape=[3,3], pads=[1,1,1,1], strides=[2,2], group=24> (r, w2)",
        {"w2": (24, 1, 3, 3)},
    ),
    "depthwise dilation 2, per-block padding": (
        "c = Conv <kernel_shape=[3,3], pads=[2,2,2,2], dilations=[2,2], group=24> (r, w2)",
        {"w2": (24, 1, 3, 3)},
    ),
    "max pool": ("c = MaxPool <kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]> (r)", {}),
}


def _model(body: str, weights: dict):
    return make_model(
        f"""{HEAD}
        g (float[1,8,9,24] x) => (float y) {{
          a = Conv <kernel_shape=[1,1]> (x, w1)
          r = Relu(a)
          {body}
          y = Relu(c)
        }}""",
        {"w1": (24, 8, 1, 1), **weights},
    )


def _legalized(model, lanes: int):
    from tvm.relax.frontend.onnx import from_onnx

    mod, _counts = bl.to_blocked(from_onnx(model, keep_params_in_input=False), lanes)
    target = tvm.target.Target(HOST)
    with target:
        return tvm.transform.Sequential(cs.legalize_passes(target))(mod), target


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_every_schedule_of_the_blocked_design_space_matches_onnxruntime(case):
    from tvm import relax, s_tir
    from tvm_ffi import structural_equal

    model = _model(*CASES[case])
    mod, target = _legalized(model, 8)
    gv, func = next(
        (gv, f)
        for gv, f in mod.functions_items()
        if isinstance(f, tvm.tirx.PrimFunc) and ("pool" in gv.name_hint or "conv2d_nchwc" in gv.name_hint)
    )
    rule = BlockedWindow(cs.CPUFacts(8))
    space = rule.design_space(s_tir.Schedule(func))
    default = rule.schedule_func(s_tir.Schedule(func), False)
    assert len(space) > 1 and structural_equal(space[0].mod, default.mod), gv.name_hint
    assert len(space) <= 16  # tuning's TRIALS_PER_TASK measures all of it
    x = np.random.default_rng(0).standard_normal((1, 8, 9, 24)).astype(np.float32)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), options).run(None, {"x": x})[0]
    for sch in space:
        mod.update_func(gv, sch.mod["main"].with_attr("tirx.is_scheduled", True))
        report: dict = {}
        ex = tvm.compile(mod, target=target, relax_pipeline=cs.pipeline(target, cs.CPUFacts(8), report))
        assert gv.name_hint in report["tuned"], report  # this candidate is what runs
        got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_tiles_fit_the_accumulator_registers():
    from tvm import s_tir

    mod, _ = _legalized(_model(*CASES["dense 3x3, 40 channels"]), 16)
    func = next(f for gv, f in mod.functions_items() if gv.name_hint.endswith("conv2d_nchwc"))
    rule = BlockedWindow(cs.CPUFacts(16))
    sch = s_tir.Schedule(func)
    conv = rule._match(sch)[0]
    assert all(cb * wb <= accumulator_registers(16) for cb, wb in rule.tilings(sch, conv))


def test_tuning_takes_the_blocked_space_for_blocked_kernels_and_window_reduction_for_nchw():
    from tvm import s_tir
    from tvm.relax.frontend.onnx import from_onnx

    facts = cs.CPUFacts(8)
    space = rule_design_space(facts)
    model = _model(*CASES["dense 3x3, 40 channels"])
    blocked, target = _legalized(model, 8)
    with target:
        plain = tvm.transform.Sequential(cs.legalize_passes(target))(from_onnx(model, keep_params_in_input=False))
    for mod, rule in ((blocked, BlockedWindow(facts)), (plain, cs.WindowReduction(facts))):
        convs = [f for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc) and "conv" in gv.name_hint]
        assert convs
        for func in convs:
            assert len(space(s_tir.Schedule(func))) == len(rule.design_space(s_tir.Schedule(func))) > 0


@pytest.mark.parametrize("lanes,per_block", [(4, True), (8, False)])
def test_depthwise_padding_is_built_once_per_block_when_there_are_enough_blocks(lanes, per_block):
    """24 channels: 6 blocks of 4 (>= PLANE_BLOCKS: the padded plane is built per block, the
    parallel loop has 6 iterations), 3 blocks of 8 (built per output row, 3 x 9 iterations)."""
    from tvm import s_tir

    mod, _ = _legalized(_model(*CASES["depthwise dilation 2, per-block padding"]), lanes)
    func = next(f for gv, f in mod.functions_items() if "depthwise" in gv.name_hint)
    rule = BlockedWindow(cs.CPUFacts(lanes))
    sch = rule.schedule_func(s_tir.Schedule(func), False)
    assert sch is not None
    pad = next(b for b in sch.get_child_blocks(sch.get_sblock("root")) if "pad" in sch.get(b).name_hint)
    outer = int(sch.get(sch.get_loops(pad)[0]).extent)
    assert outer == (6 if per_block else 27)


def test_a_tuned_blocked_build_applies_records_to_blocked_kernels(tmp_path, net):
    """Real tuning (a few trials) of a build with ``[tvm] layout = "NCHWc"``: the blocked
    kernels are tasks with the blocked rule's space, their records apply, nothing is left naive."""
    from deploycc.targets import load_target
    from deploycc.targets.tvm import tuning as tvm_tuning
    from deploycc.targets.tvm.backend import TVMBackend

    target = load_target("cpu")
    target.settings["tvm"] = {**target.settings["tvm"], "layout": "NCHWc"}
    out = tmp_path / "out"
    out.mkdir()
    options = {"tuning_db": str(tmp_path / "db"), "tune_trials": 8, "trials_per_task": 2}
    result = TVMBackend().compile(net, target, out, options)
    assert result.info["layout"]["layout"].startswith("NCHW") and result.info["tuning_space"]["tasks"] > 0
    schedules = result.info["schedules"]
    assert schedules["tuned"] > 0 and schedules["unscheduled"] == 0, schedules
    lines = (tmp_path / "db" / tvm_tuning.WORKLOADS).read_text().splitlines()
    modules = [base64.b64decode(json.loads(line)[1]) for line in lines]  # each workload's module, serialized
    assert any(b"conv2d_nchwc" in m for m in modules)  # a blocked kernel's block, tuned
