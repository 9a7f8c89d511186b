"""``[tvm] layout = "NCHWc"``: graphs rewritten to NCHW[x]c compute what ONNX Runtime computes
(channels padded to a whole block exactly, any groups, strides, dilations, paddings), the blocked
kernels are scheduled by the blocked rule, the transforms sit only at the region's edges, and a
setting that cannot take effect is refused with one line naming it (exit 2)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import make_model, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

tvm = pytest.importorskip("tvm")
ort = pytest.importorskip("onnxruntime")

from deploycc.core.errors import UserError  # noqa: E402
from deploycc.targets.tvm import blocked_layout as bl  # noqa: E402
from deploycc.targets.tvm import cpu_schedules as cs  # noqa: E402
from deploycc.targets.tvm.blocked_window import BlockedWindow  # noqa: E402

HOST = {"kind": "llvm", "num-cores": 2}
HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


def _blocked_module(model, lanes: int):
    from tvm.relax.frontend.onnx import from_onnx

    return bl.to_blocked(from_onnx(model, keep_params_in_input=False), lanes)


def _scheduled_by_blocked_rule(mod, lanes: int) -> list[str]:
    """The PrimFuncs the blocked rule alone schedules in the legalized, fused module."""
    from tvm.s_tir import dlight

    target = tvm.target.Target(HOST)
    with target:
        mod = tvm.transform.Sequential(cs.legalize_passes(target))(mod)
        mod = dlight.ApplyDefaultSchedule(BlockedWindow(cs.CPUFacts(lanes)))(mod)
    return [
        gv.name_hint
        for gv, f in mod.functions_items()
        if isinstance(f, tvm.tirx.PrimFunc) and f.attrs and f.attrs.get("tirx.is_scheduled")
    ]


def _check(model, lanes: int = 16) -> dict:
    """Build ``model`` blocked with ``lanes``, compare with ONNX Runtime; returns the counts."""
    from tvm import relax

    mod, counts = _blocked_module(model, lanes)
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    target = tvm.target.Target(HOST)
    ex = tvm.compile(mod, target=target, relax_pipeline=cs.pipeline(target, cs.CPUFacts(lanes)))
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](*[tvm.runtime.tensor(v) for v in feeds.values()]).numpy()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model.SerializeToString(), options).run(None, feeds)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    return counts


UNIT = f"""{HEAD}
g (float[1,3,21,26] x) => (float y) {{
  a = Conv <kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]> (x, w1, b1)
  ar = Relu(a)
  e = Conv <kernel_shape=[1,1], group=2> (ar, w2, b2)
  er = Relu(e)
  d = Conv <kernel_shape=[3,3], group=40, pads=[2,2,2,2], dilations=[2,2]> (er, w3, b3)
  lo = Constant <value = float {{0.0}}> ()
  hi = Constant <value = float {{6.0}}> ()
  dr = Clip(d, lo, hi)
  p = Conv <kernel_shape=[1,1]> (dr, w4, b4)
  r = Add(p, ar)
  m = MaxPool <kernel_shape=[3,3], strides=[2,2], pads=[1,1,1,1]> (r)
  s = Sigmoid(m)
  v = AveragePool <kernel_shape=[2,2], strides=[1,1]> (s)
  y = Softmax <axis=1> (v)
}}"""
UNIT_WEIGHTS = {
    "w1": (20, 3, 3, 3),
    "b1": (20,),
    "w2": (40, 10, 1, 1),
    "b2": (40,),
    "w3": (40, 1, 3, 3),
    "b3": (40,),
    "w4": (20, 40, 1, 1),
    "b4": (20,),
}


@pytest.mark.parametrize("lanes", [4, 8, 16], ids=["neon", "avx2", "avx512"])
def test_an_inverted_residual_unit_runs_blocked_end_to_end(lanes):
    """Stem (NCHW input), group-2 expansion, dilated depthwise with a ReLU6 (Clip), projection,
    residual add, pools and an activation, 20 and 40 channels (not multiples of 16): all blocked, one exit before
    the softmax, no entry (the stem reads NCHW)."""
    counts = _check(make_model(UNIT, UNIT_WEIGHTS), lanes)
    assert counts["conv (NCHW input)"] == 1 and counts["conv"] == 1 and counts["depthwise conv"] == 1
    assert counts["grouped conv (block-diagonal)"] == 1 and counts["pool"] == 2
    assert counts["exit transforms"] == 1 and "entry transforms" not in counts
    assert counts["element-wise"] == 10  # 4 bias adds, 2 ReLUs, ReLU6 (max, min), residual add, sigmoid


@pytest.mark.parametrize("lanes", [8, 16])
def test_a_grouped_conv_of_whole_blocks_runs_per_group(lanes):
    """32 -> 64 channels in 2 groups (16 in, 32 out per group): whole blocks at 8 and 16 lanes."""
    model = make_model(
        f"""{HEAD}
        g (float[1,32,7,11] x) => (float y) {{
          c = Conv <kernel_shape=[3,3], pads=[1,1,1,1], group=2> (x, w1, b1)
          r = Relu(c)
          y = Conv <kernel_shape=[1,1]> (r, w2)
        }}""",
        {"w1": (64, 16, 3, 3), "b1": (64,), "w2": (8, 64, 1, 1)},
    )
    counts = _check(model, lanes)
    assert counts["grouped conv (whole blocks)"] == 1 and "grouped conv (block-diagonal)" not in counts
    mod, _ = _blocked_module(model, lanes)
    assert any("grouped_conv2d_nchwc" in n for n in _scheduled_by_blocked_rule(mod, lanes))


def test_every_blocked_kernel_is_scheduled_by_the_blocked_rule():
    mod, _counts = _blocked_module(make_model(UNIT, UNIT_WEIGHTS), 16)
    names = _scheduled_by_blocked_rule(mod, 16)
    for kernel in ("conv2d_nchw_in_nchwc", "depthwise_conv2d_nchwc", "conv2d_nchwc", "max_pool2d", "avg_pool2d"):
        assert any(kernel in n for n in names), (kernel, names)


def test_an_op_that_stays_nchw_gets_the_tensor_unpacked_once_and_packed_back():
    """A resize in the middle: one exit before it, one entry after it."""
    model = make_model(
        f"""{HEAD}
        g (float[1,16,8,10] x) => (float y) {{
          a = Conv <kernel_shape=[1,1]> (x, w1)
          s = Constant <value = float[4] {{1.0, 1.0, 2.0, 2.0}}> ()
          u = Resize <mode="linear"> (a, , s)
          b = Conv <kernel_shape=[3,3], pads=[1,1,1,1]> (u, w2)
          y = Add(b, u)
        }}""",
        {"w1": (24, 16, 1, 1), "w2": (24, 24, 3, 3)},
    )
    counts = _check(model, 8)
    assert counts["exit transforms"] == 2  # before the resize, and the function's output
    assert counts["entry transforms"] == 2  # the input of the first conv, the resize's output


def test_a_squeeze_excite_gate_multiplies_in_the_blocked_layout():
    """The gate (global pool, 1x1 conv, sigmoid) is one value per channel: the multiply runs
    blocked; the global mean over H, W stays NCHW (it is a reduction TVM imports as ``mean``)."""
    model = make_model(
        f"""{HEAD}
        g (float[1,12,6,9] x) => (float y) {{
          a = Conv <kernel_shape=[3,3], pads=[1,1,1,1]> (x, w1)
          r = Relu(a)
          p = GlobalAveragePool(r)
          q = Conv <kernel_shape=[1,1]> (p, w2)
          s = Sigmoid(q)
          m = Mul(r, s)
          c = Conv <kernel_shape=[1,1]> (m, w3)
          y = Relu(c)
        }}""",
        {"w1": (20, 12, 3, 3), "w2": (20, 20, 1, 1), "w3": (8, 20, 1, 1)},
    )
    counts = _check(model, 8)
    assert counts["element-wise"] == 3  # ReLU, sigmoid, the gate's multiply
    assert counts["exit transforms"] == 2  # r for the mean, c for the output


def test_a_one_channel_map_broadcast_over_the_channels_is_not_multiplied_blocked():
    """Spatial attention: a 1-channel sigmoid map times a 20-channel tensor. Blocked, the map's
    value sits in lane 0 only, so the multiply must run NCHW (both unpacked); it stays exact."""
    model = make_model(
        f"""{HEAD}
        g (float[1,6,7,9] x) => (float y) {{
          a = Conv <kernel_shape=[3,3], pads=[1,1,1,1]> (x, w1)
          r = Relu(a)
          m = Conv <kernel_shape=[1,1]> (r, w2)
          s = Sigmoid(m)
          p = Mul(r, s)
          y = Conv <kernel_shape=[1,1]> (p, w3)
        }}""",
        {"w1": (20, 6, 3, 3), "w2": (1, 20, 1, 1), "w3": (8, 20, 1, 1)},
    )
    counts = _check(model, 8)
    assert counts["exit transforms"] == 2  # r and s, for the multiply (the output conv runs NCHW)
    assert counts["element-wise"] == 2  # ReLU, sigmoid; not the multiply


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cin=st.integers(1, 21),
    cout=st.integers(1, 21),
    h=st.integers(3, 12),
    w=st.integers(3, 19),
    k=st.sampled_from([1, 3, 5]),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    pads=st.tuples(*[st.integers(0, 2)] * 4),
    kind=st.sampled_from(["dense", "depthwise", "grouped"]),
    lanes=st.sampled_from([4, 8, 16]),
)
def test_random_convs_match_onnxruntime(cin, cout, h, w, k, stride, dilation, pads, kind, lanes):
    """Any channels (padded to a whole block), groups, strides, dilations and paddings; the
    conv's input comes from a conv with a ReLU, so it is blocked, and a residual-like add follows."""
    groups = {"dense": 1, "depthwise": cout, "grouped": 2}[kind]
    cout = cout * 2 if kind == "grouped" else cout
    mid = cout if kind == "depthwise" else cin * (2 if kind == "grouped" else 1)
    if dilation * (k - 1) + 1 > h + pads[0] + pads[2] or dilation * (k - 1) + 1 > w + pads[1] + pads[3]:
        k = 1
    attrs = f"kernel_shape=[{k},{k}], strides=[{stride},{stride}], dilations=[{dilation},{dilation}], pads={list(pads)}"
    model = make_model(
        f"""{HEAD}
        g (float[1,{cin},{h},{w}] x) => (float y) {{
          a = Conv <kernel_shape=[1,1]> (x, w1, b1)
          r = Relu(a)
          c = Conv <{attrs}, group={groups}> (r, w2, b2)
          y = Add(c, b3)
        }}""",
        {
            "w1": (mid, cin, 1, 1),
            "b1": (mid,),
            "w2": (cout, mid // groups, k, k),
            "b2": (cout,),
            "b3": (1, cout, 1, 1),
        },
    )
    counts = _check(model, lanes)
    assert counts.get("conv", 0) + counts.get("conv (NCHW input)", 0) >= 1


def test_the_setting_is_checked():
    assert bl.layout_setting({}, "cpu") == "NCHW"
    assert bl.layout_setting({"layout": "NCHWc"}, "cpu") == "NCHWc"
    with pytest.raises(UserError, match=r"\[tvm\] layout = 'NHWC'"):
        bl.layout_setting({"layout": "NHWC"}, "cpu")
    cuda = tvm.target.Target({"kind": "cuda", "arch": "sm_80"})
    with pytest.raises(UserError, match="CPU"):
        bl.check_applies("NCHWc", "t", cuda, False, 0)
    with pytest.raises(UserError, match="fuse"):
        bl.check_applies("NCHWc", "t", tvm.target.Target(HOST), False, 3)


def test_an_unknown_layout_is_refused_with_exit_2(tmp_path, capsys):
    import onnx
    from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS

    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",)), tmp_path / "m.onnx")
    target = tmp_path / "blocked.toml"
    target.write_text(
        'name = "blocked"\nbackend = "tvm"\nprecision = "fp32"\npasses = ["fold-bn"]\n'
        '[tvm]\ntarget = { kind = "llvm", num-cores = 2 }\nlayout = "NCHW8"\n'
    )
    assert run_cli(["build", tmp_path / "m.onnx", "--target", target, "-o", tmp_path / "out"]) == 2
    err = capsys.readouterr().err
    assert "layout = 'NCHW8'" in err and not (tmp_path / "out").exists()


def _target_file(path, base: str):
    """The repository's ``base`` target file with ``[tvm] layout = "NCHWc"`` added."""
    from helpers import REPO

    text = (REPO / "targets" / f"{base}.toml").read_text()
    path.write_text(
        text.replace(f'name = "{base}"', f'name = "{base}-nchwc"').replace("[tvm]", '[tvm]\nlayout = "NCHWc"')
    )
    return path


def test_a_blocked_cpu_build_passes_its_numerics_check_and_says_what_it_blocked(net_onnx, tmp_path):
    from deploycc.pipeline.artifact import read_manifest

    out = tmp_path / "net.nchwc"
    assert run_cli(["build", net_onnx, "--target", _target_file(tmp_path / "t.toml", "cpu"), "-o", out]) == 0
    m = read_manifest(out)
    assert m["verification"]["status"] == "passed"
    layout = m["backend_info"]["layout"]
    lanes = cs.CPUFacts.of(tvm.target.Target({"kind": "llvm", "mcpu": tvm.target.codegen.llvm_get_system_cpu()})).lanes
    assert layout["layout"] == f"NCHW{lanes}c" and layout["ops"].get("conv", 0) + layout["ops"].get(
        "conv (NCHW input)", 0
    )


@pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None, reason="aarch64-linux-gnu-gcc is not installed (make setup)"
)
def test_arm64_blocked_build_uses_neon_blocks_of_4(net_onnx, tmp_path):
    from deploycc.pipeline.artifact import read_manifest

    out = tmp_path / "net.arm64"
    target = _target_file(tmp_path / "a.toml", "arm64-cpu")
    assert run_cli(["build", net_onnx, "--target", target, "-o", out]) == 3  # built; verified on the device
    assert read_manifest(out)["backend_info"]["layout"]["layout"] == "NCHW4c"
    assert (out / "model.so").read_bytes()[18] == 183  # ELF e_machine: aarch64
