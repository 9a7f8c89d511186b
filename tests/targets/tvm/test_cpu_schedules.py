"""deploycc's default CPU schedules: every rule is applied (not skipped) and computes what ONNX
Runtime computes, on small graphs with awkward shapes (channels that are not a multiple of the
vector width, odd widths, groups, dilations, strides) and for each vector width a target can have."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import numpy_helper

tvm = pytest.importorskip("tvm")
ort = pytest.importorskip("onnxruntime")

from deploycc.targets.tvm import cpu_schedules as cs  # noqa: E402

HOST = {"kind": "llvm", "num-cores": 2}


def _conv_model(cin, cout, h, w, attrs="pads=[1,1,1,1]", k=3, group=1, epilogue="y = Relu(c)", extra_in=""):
    text = f"""<ir_version: 8, opset_import: ["" : 17]>
    g (float[1,{cin},{h},{w}] x{extra_in}) => (float y) {{
      c = Conv <kernel_shape=[{k},{k}], group={group}, {attrs}> (x, wt, b)
      {epilogue}
    }}"""
    model = onnx.parser.parse_model(text)
    rng = np.random.default_rng(cin * 1000 + cout * 10 + w)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(rng.standard_normal((cout, cin // group, k, k)).astype(np.float32), "wt"),
            numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b"),
        ]
    )
    return model


def _graph(body: str, inputs: str):
    return onnx.parser.parse_model(f"""<ir_version: 8, opset_import: ["" : 17]>
    g ({inputs}) => (float y) {{ {body} }}""")


def _run_tvm(model, facts: cs.CPUFacts, feeds: dict):
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    target = tvm.target.Target(HOST)
    ex = tvm.compile(
        from_onnx(model, keep_params_in_input=False), target=target, relax_pipeline=cs.pipeline(target, facts)
    )
    vm = relax.VirtualMachine(ex, tvm.cpu())
    return vm["main"](*[tvm.runtime.tensor(v) for v in feeds.values()]).numpy()


def _run_ort(model, feeds: dict):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options).run(None, feeds)[0]


def _scheduled_by(model, rule) -> list[str]:
    """Names of the PrimFuncs ``rule`` alone schedules in the legalized, fused module."""
    from tvm.relax.frontend.onnx import from_onnx
    from tvm.s_tir import dlight

    target = tvm.target.Target(HOST)
    with target:
        mod = tvm.transform.Sequential(cs.legalize_passes(target))(from_onnx(model, keep_params_in_input=False))
        mod = dlight.ApplyDefaultSchedule(rule)(mod)
    return [
        gv.name_hint
        for gv, f in mod.functions_items()
        if isinstance(f, tvm.tirx.PrimFunc) and f.attrs and f.attrs.get("tirx.is_scheduled")
    ]


def _check(model, facts=cs.CPUFacts(), rule=cs.WindowReduction, atol=1e-4):
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    assert _scheduled_by(model, rule(facts)), "the rule did not schedule the model's PrimFunc"
    want = _run_ort(model, feeds)
    got = _run_tvm(model, facts, feeds)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol * max(1.0, float(np.abs(want).max())))


CONVS = {
    "3x3 pad1 48->48": {"cin": 48, "cout": 48, "h": 12, "w": 64},
    "channels 5->7, odd width": {"cin": 5, "cout": 7, "h": 9, "w": 33},
    "stride 2": {"cin": 8, "cout": 16, "h": 17, "w": 40, "attrs": "pads=[1,1,1,1], strides=[2,2]"},
    "dilation 2": {"cin": 6, "cout": 10, "h": 11, "w": 27, "attrs": "pads=[2,2,2,2], dilations=[2,2]"},
    "groups 2": {"cin": 8, "cout": 12, "h": 7, "w": 19, "group": 2},
    "depthwise": {"cin": 24, "cout": 24, "h": 10, "w": 48, "group": 24},
    "depthwise stride 2 dilation 3": {
        "cin": 9,
        "cout": 9,
        "h": 21,
        "w": 35,
        "group": 9,
        "attrs": "pads=[3,3,3,3], strides=[2,2], dilations=[3,3]",
    },
    "1x1 no pad": {"cin": 40, "cout": 13, "h": 5, "w": 64, "k": 1, "attrs": "pads=[0,0,0,0]"},
    "5x5 asymmetric pad": {"cin": 3, "cout": 16, "h": 13, "w": 31, "k": 5, "attrs": "pads=[1,2,2,1], strides=[2,2]"},
}


@pytest.mark.parametrize("case", CONVS, ids=list(CONVS))
def test_conv_shapes_match_onnxruntime(case):
    _check(_conv_model(**CONVS[case]))


@pytest.mark.parametrize("lanes", [4, 16], ids=["neon-width", "avx512-width"])
def test_other_vector_widths_compute_the_same(lanes):
    """The tiles chosen for NEON (4 lanes) and AVX-512 (16 lanes) are still correct code on this host."""
    _check(_conv_model(12, 20, 6, 37), cs.CPUFacts(lanes=lanes))
    _check(_conv_model(16, 16, 5, 24, group=16, attrs="pads=[1,1,1,1], strides=[2,2]"), cs.CPUFacts(lanes=lanes))


def test_epilogue_with_residual_add_is_fused_into_the_conv():
    model = _conv_model(16, 16, 8, 40, epilogue="r = Relu(c)\n y = Add(r, x)")
    _check(model)
    assert len(_scheduled_by(model, cs.WindowReduction(cs.CPUFacts()))) == 1


def test_small_onchip_memory_splits_rows_into_chunks_and_stays_exact():
    _check(_conv_model(32, 32, 4, 256), cs.CPUFacts(onchip_bytes=16384))


@pytest.mark.parametrize(
    "pool",
    [
        "y = MaxPool <kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]> (x)",
        "y = AveragePool <kernel_shape=[2,2], strides=[2,2]> (x)",
    ],
)
def test_pooling(pool):
    _check(_graph(pool, "float[1,6,15,34] x"))


RESIZES = {
    "half_pixel x2": ("half_pixel", "float[1,5,7,19] x", "1.0, 1.0, 2.0, 2.0"),
    "align_corners x8": ("align_corners", "float[1,3,5,9] x", "1.0, 1.0, 8.0, 8.0"),
    "asymmetric x3 down-up": ("asymmetric", "float[1,2,9,12] x", "1.0, 1.0, 3.0, 0.5"),
    "pytorch_half_pixel": ("pytorch_half_pixel", "float[1,4,6,10] x", "1.0, 1.0, 2.5, 1.5"),
}


@pytest.mark.parametrize("case", RESIZES, ids=list(RESIZES))
def test_separable_linear_resize_matches_onnxruntime(case):
    mode, inputs, scales = RESIZES[case]
    _check(
        _graph(
            f"""s = Constant <value = float[4] {{{scales}}}> ()
        y = Resize <mode="linear", coordinate_transformation_mode="{mode}"> (x, , s)""",
            inputs,
        ),
        rule=cs.Resize,
    )


@pytest.mark.parametrize(
    "body,inputs",
    [
        ("y = Concat <axis=1> (x, z)", "float[1,3,9,21] x, float[1,5,9,21] z"),
        ("y = GlobalAveragePool (x)", "float[1,7,9,21] x"),
        ("y = Sigmoid (x)", "float[1,7,9,21] x"),
    ],
)
def test_elementwise_and_layout_ops(body, inputs):
    _check(_graph(body, inputs), rule=cs.Elementwise)


def test_facts_follow_the_target_features():
    assert cs.CPUFacts.of(tvm.target.Target({"kind": "llvm", "mcpu": "znver3"})).lanes == 8
    assert cs.CPUFacts.of(tvm.target.Target({"kind": "llvm", "mcpu": "skylake-avx512"})).lanes == 16
    arm = tvm.target.Target({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"]})
    assert cs.CPUFacts.of(arm, 4096).lanes == 4 and cs.CPUFacts.of(arm, 4096).onchip_bytes == 4096


@pytest.mark.parametrize("case", ["3x3 pad1 48->48", "grouped 1x1", "depthwise s2"])
def test_every_schedule_of_the_tuning_design_space_computes_the_naive_result(case):
    """Tuning measures ``WindowReduction.design_space``: the default tiling first, then every
    register tile that fits; each one must compute what the unscheduled loop nest computes."""
    from tvm import relax, s_tir
    from tvm.relax.frontend.onnx import from_onnx
    from tvm_ffi import structural_equal

    model = {
        "3x3 pad1 48->48": lambda: _conv_model(48, 48, 6, 32),
        "grouped 1x1": lambda: _conv_model(16, 16, 4, 24, attrs="pads=[0,0,0,0]", k=1, group=2),
        "depthwise s2": lambda: _conv_model(8, 8, 9, 33, attrs="pads=[1,1,1,1], strides=[2,2]", group=8),
    }[case]()
    target = tvm.target.Target(HOST)
    with target:
        mod = tvm.transform.Sequential(cs.legalize_passes(target))(from_onnx(model, keep_params_in_input=False))
    gv, func = next(
        (gv, f) for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc) and "conv" in gv.name_hint
    )
    rule = cs.WindowReduction(cs.CPUFacts())
    space = rule.design_space(s_tir.Schedule(func))
    default = rule.schedule_func(s_tir.Schedule(func), False)
    assert len(space) > 1 and structural_equal(space[0].mod, default.mod), gv.name_hint
    x = np.random.default_rng(0).standard_normal([d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim])
    x = x.astype(np.float32)
    want = _run_ort(model, {"x": x})
    for sch in space:
        mod.update_func(gv, sch.mod["main"].with_attr("tirx.is_scheduled", True))
        report: dict = {}
        ex = tvm.compile(mod, target=target, relax_pipeline=cs.pipeline(target, cs.CPUFacts(), report))
        assert report["tuned"] == [gv.name_hint], report  # this candidate is what runs
        got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))
