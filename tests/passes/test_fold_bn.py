"""fold-bn: golden models as ONNX text, expected op counts, the strict oracle, every refusal."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import numpy_helper

from deploycc.passes import FoldBatchNorm, op_histogram, run_passes

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
BN = {"s": (8,), "b": (8,), "m": (8,), "v": (8,)}


def fold(model):
    p = FoldBatchNorm()
    out, records = run_passes(model, [p])  # verify=True: the ORT oracle must agree
    return out, records[0]


def ops(model) -> dict:
    return op_histogram(model)


def inits(model) -> dict:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.mark.parametrize("group,bias", [(1, True), (1, False), (2, True), (4, False), (8, True)])
def test_conv_any_group_with_or_without_bias(group, bias):
    b = ", cb" if bias else ""
    text = f"""{HEAD} g (float[2,8,9,11] x) => (float[2,8,9,11] y)
    {{ c = Conv<pads=[1,0,1,2], group={group}, kernel_shape=[3,3]>(x, w{b})
       y = BatchNormalization<epsilon=1e-3>(c, s, b, m, v) }}"""
    weights = {"w": (8, 8 // group, 3, 3), **BN} | ({"cb": (8,)} if bias else {})
    out, rec = fold(make_model(text, weights, positive=("v",)))
    assert ops(out) == {"Conv": 1} and rec.modified and len(rec.log.rewrites) == 1
    assert rec.verification[0].ok and rec.oracle.startswith("onnxruntime")
    assert set(inits(out)) == {"Conv_0.folded_weight", "Conv_0.folded_bias"}  # old params released


def test_missing_epsilon_means_1e5():
    text = f"""{HEAD} g (float[1,8,5,5] x) => (float[1,8,5,5] y)
    {{ c = Conv(x, w)
       y = BatchNormalization(c, s, b, m, v) }}"""
    model = make_model(text, {"w": (8, 8, 1, 1), **BN}, positive=("v",))
    p = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    out, _ = fold(model)
    s = p["s"] / np.sqrt(p["v"] + float(np.float32(1e-5)))  # the attribute is a float32
    np.testing.assert_allclose(inits(out)["Conv_0.folded_bias"], p["b"] - p["m"] * s, rtol=1e-6)


@pytest.mark.parametrize("group", [1, 2, 4])
def test_conv_transpose_grouped_weight_layout(group):
    text = f"""{HEAD} g (float[1,4,6,6] x) => (float[1,8,13,13] y)
    {{ c = ConvTranspose<strides=[2,2], group={group}>(x, w, cb)
       y = BatchNormalization(c, s, b, m, v) }}"""
    out, rec = fold(make_model(text, {"w": (4, 8 // group, 3, 3), "cb": (8,), **BN}, positive=("v",)))
    assert ops(out) == {"ConvTranspose": 1} and rec.verification[0].ok


@pytest.mark.parametrize(
    "trans_b,alpha,beta,bias", [(0, 1.0, 1.0, True), (1, 0.5, 2.0, True), (1, 1.5, 0.0, True), (0, 2.0, 1.0, False)]
)
def test_gemm_trans_b_alpha_beta(trans_b, alpha, beta, bias):
    c = ", gc" if bias else ""
    text = f"""{HEAD} g (float[3,5] x) => (float[3,8] y)
    {{ z = Gemm<transB={trans_b}, alpha={alpha}, beta={beta}>(x, gb{c})
       y = BatchNormalization(z, s, b, m, v) }}"""
    weights = {"gb": (8, 5) if trans_b else (5, 8), **BN} | ({"gc": (3, 8)} if bias else {})
    out, rec = fold(make_model(text, weights, positive=("v",)))
    assert ops(out) == {"Gemm": 1} and rec.verification[0].ok
    gemm = out.graph.node[0]
    assert onnx.helper.get_attribute_value(next(a for a in gemm.attribute if a.name == "beta")) == 1.0


@pytest.mark.parametrize("group", [1, 2])
def test_bn_before_unpadded_conv_is_folded_forward(group):
    text = f"""{HEAD} g (float[1,8,7,7] x) => (float[1,6,5,5] y)
    {{ a = BatchNormalization(x, s, b, m, v)
       y = Conv<group={group}, strides=[1,1]>(a, w, cb) }}"""
    out, rec = fold(make_model(text, {"w": (6, 8 // group, 3, 3), "cb": (6,), **BN}, positive=("v",)))
    assert ops(out) == {"Conv": 1} and "unpadded" in rec.log.rewrites[0]["detail"]


def test_bn_output_that_is_a_graph_output_keeps_its_name():
    text = f"""{HEAD} g (float[1,8,5,5] x) => (float[1,8,5,5] y)
    {{ c = Conv<pads=[1,1,1,1]>(x, w)
       y = BatchNormalization(c, s, b, m, v) }}"""
    out, _ = fold(make_model(text, {"w": (8, 8, 3, 3), **BN}, positive=("v",)))
    assert out.graph.output[0].name == "y" and out.graph.node[0].output[0] == "y"


def test_shared_weight_gets_a_new_initializer():
    text = f"""{HEAD} g (float[1,8,5,5] x) => (float[1,8,5,5] y, float[1,8,5,5] z)
    {{ c = Conv(x, w)
       y = BatchNormalization(c, s, b, m, v)
       z = Conv(x, w) }}"""
    model = make_model(text, {"w": (8, 8, 1, 1), **BN}, positive=("v",))
    original = inits(model)["w"]
    out, _ = fold(model)
    assert np.array_equal(inits(out)["w"], original)  # untouched, still used by z
    assert [n.input[1] for n in out.graph.node] == ["Conv_0.folded_weight", "w"]


REFUSALS = [
    (
        "conv output has another consumer",
        """c = Conv(x, w)
       y = BatchNormalization(c, s, b, m, v)
       z = Relu(c)""",
        "2 consumers",
        "y, z",
    ),
    (
        "conv output is a graph output",
        """c = Conv(x, w)
       y = BatchNormalization(c, s, b, m, v)""",
        "graph output",
        "y, c",
    ),
    (
        "training mode",
        """c = Conv(x, w)
       y, rm, rv = BatchNormalization<training_mode=1>(c, s, b, m, v)""",
        "training mode",
        "y",
    ),
    (
        "var + eps <= 0",
        """c = Conv(x, w)
       y = BatchNormalization<epsilon=0.0>(c, s, b, m, zv)""",
        "var + epsilon <= 0",
        "y",
    ),
    (
        "padded conv after BN",
        """a = BatchNormalization(x, s, b, m, v)
       y = Conv<pads=[1,1,1,1]>(a, w3)""",
        "pads [1, 1, 1, 1] are not all zero",
        "y",
    ),
]


@pytest.mark.parametrize("case,body,reason,outs", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_leave_the_graph_and_say_why(case, body, reason, outs):
    shapes = {"y": "[1,8,5,5]", "z": "[1,8,5,5]", "c": "[1,8,5,5]", "rm": "[8]", "rv": "[8]"}
    out_decl = ", ".join(f"float{shapes[o]} {o}" for o in outs.split(", "))
    text = f"{HEAD} g (float[1,8,5,5] x) => ({out_decl}) {{ {body} }}"
    model = make_model(text, {"w": (8, 8, 1, 1), "w3": (8, 8, 3, 3), "zv": (8,), **BN}, positive=("v",))
    for t in model.graph.initializer:
        if t.name == "zv":
            t.CopyFrom(numpy_helper.from_array(np.zeros(8, np.float32), "zv"))
    p = FoldBatchNorm()
    out, records = run_passes(model, [p])
    assert not records[0].modified and ops(out) == ops(model)
    assert any(reason in r["reason"] for r in records[0].log.refusals), records[0].log.refusals


def test_refuses_bn_with_its_optional_outputs():
    text = """<ir_version: 8, opset_import: ["" : 9]> g (float[1,8,5,5] x) => (float[1,8,5,5] y, float[8] rm)
    { c = Conv(x, w)
      y, rm, rv, sm, sv = BatchNormalization(c, s, b, m, v) }"""
    model = make_model(text, {"w": (8, 8, 1, 1), **BN}, positive=("v",))
    _, records = run_passes(model, [FoldBatchNorm()], verify=False)
    assert "optional running-statistics outputs" in records[0].log.refusals[0]["reason"]


def test_refuses_parameters_that_are_graph_inputs():
    text = f"""{HEAD} g (float[1,8,5,5] x, float[8] s) => (float[1,8,5,5] y)
    {{ c = Conv(x, w)
       y = BatchNormalization(c, s, b, m, v) }}"""
    model = make_model(text, {"w": (8, 8, 1, 1), "b": (8,), "m": (8,), "v": (8,)}, positive=("v",))
    _, records = run_passes(model, [FoldBatchNorm()])
    assert "not a constant initializer" in records[0].log.refusals[0]["reason"]


def test_refuses_initializer_that_is_also_a_graph_input():
    text = f"""{HEAD} g (float[1,8,5,5] x, float[8,8,1,1] w) => (float[1,8,5,5] y)
    {{ c = Conv(x, w)
       y = BatchNormalization(c, s, b, m, v) }}"""
    model = make_model(text, {"w": (8, 8, 1, 1), **BN}, positive=("v",))
    _, records = run_passes(model, [FoldBatchNorm()])
    assert "also a graph input" in records[0].log.refusals[0]["reason"]


def test_refuses_a_dtype_the_fold_does_not_compute_in():
    text = """<ir_version: 10, opset_import: ["" : 22]> g (bfloat16[1,8,5,5] x) => (bfloat16[1,8,5,5] y)
    { c = Conv(x, w)
      y = BatchNormalization(c, s, b, m, v) }"""
    model = onnx.parser.parse_model(text)
    for name, shape in {"w": (8, 8, 1, 1), **BN}.items():
        model.graph.initializer.append(
            onnx.helper.make_tensor(name, onnx.TensorProto.BFLOAT16, shape, np.ones(int(np.prod(shape))))
        )
    _, records = run_passes(model, [FoldBatchNorm()], verify=False)
    assert "has dtype BFLOAT16, not float16/float32/float64" in records[0].log.refusals[0]["reason"]


def test_refuses_a_fold_that_overflows_fp16():
    text = """<ir_version: 8, opset_import: ["" : 17]> g (float16[1,8,5,5] x) => (float16[1,8,5,5] y)
    { c = Conv(x, w)
       y = BatchNormalization<epsilon=1e-12>(c, s, b, m, v) }"""
    model = onnx.parser.parse_model(text)
    values = {
        "w": np.full((8, 8, 1, 1), 60000.0),
        "s": np.full(8, 100.0),
        "b": np.zeros(8),
        "m": np.zeros(8),
        "v": np.zeros(8),
    }
    for name, a in values.items():
        model.graph.initializer.append(numpy_helper.from_array(a.astype(np.float16), name))
    _, records = run_passes(model, [FoldBatchNorm()], verify=False)
    assert "not finite in float16" in records[0].log.refusals[0]["reason"]
