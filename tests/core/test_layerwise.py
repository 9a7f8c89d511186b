"""Per-layer comparison (``core.layerwise``): the first tensor out of tolerance is named."""

from __future__ import annotations

import numpy as np
import onnx.parser

from deploycc.core.layerwise import compare_layers, first_bad_line
from deploycc.core.numerics import Tolerance

CHAIN = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,8,8] x) => (float[1,4,8,8] y) <float[4,1,1,1] k = {{1, 2, 3, 4}}, float[1,4,1,1] s = {{{s}}}> {{
  a = Conv<group=4>(x, k)
  r = Relu(a)
  {mid} = Mul(r, s)
  y = Sigmoid({mid})
}}"""
FEEDS = {"x": np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)}


def _model(scale: str = "0.5, 0.5, 0.5, 0.5", mid: str = "m"):
    return onnx.parser.parse_model(CHAIN.format(s=scale, mid=mid))


def test_the_perturbed_layer_is_named_first():
    table = compare_layers(_model(), _model("0.5, 0.5, 0.5, 0.51"), FEEDS, Tolerance())
    assert table["status"] == "failed"
    assert [r["tensor"] for r in table["rows"]] == ["a", "r", "m", "y"]  # topological order
    assert [r["ok"] for r in table["rows"]] == [True, True, False, False]
    assert table["first_bad"]["tensor"] == "m" and table["first_bad"]["op"] == "Mul"
    assert "max abs" in table["first_bad"]["why"]
    assert first_bad_line(table).startswith("first layer out of tolerance: 'm' (Mul")


def test_identical_models_pass_and_chunks_give_the_same_rows():
    whole = compare_layers(_model(), _model(), FEEDS, Tolerance())
    chunked = compare_layers(_model(), _model("0.5, 0.5, 0.5, 0.51"), FEEDS, Tolerance(), budget_bytes=1)
    assert whole["status"] == "passed" and whole["first_bad"] is None and whole["compared"] == 4
    assert [r["tensor"] for r in chunked["rows"]] == ["a", "r", "m", "y"]
    assert chunked["first_bad"]["tensor"] == "m"
    assert "every one of 4" in first_bad_line(whole)


def test_renamed_tensors_are_listed_as_unmatched():
    table = compare_layers(_model(), _model(mid="renamed"), FEEDS, Tolerance())
    assert [r["tensor"] for r in table["rows"]] == ["a", "r", "y"]
    assert {u["tensor"] for u in table["unmatched"]} == {"m", "renamed"}
    assert table["status"] == "passed"


def test_a_model_onnx_runtime_cannot_run_is_not_run_never_passed():
    broken = _model()
    broken.graph.node[0].op_type = "NoSuchOp"
    table = compare_layers(_model(), broken, FEEDS, Tolerance())
    assert table["status"] == "not_run" and "ONNX Runtime could not run" in table["reason"]
    assert first_bad_line(table).startswith("per-layer comparison not run")


def test_a_name_a_pass_kept_with_another_meaning_is_not_compared():
    """fold-bn keeps the Conv's output name, which then holds what the BatchNormalization computed."""
    from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model

    before = make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",))
    w, s, b, m, v = (onnx.numpy_helper.to_array(t) for t in before.graph.initializer)
    k = s / np.sqrt(v + 1e-3)
    after = onnx.parser.parse_model(
        """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,16,16] image) => (float[1,8,16,16] logits) { c = Conv<pads=[1,1,1,1]>(image, wf, bf)
  logits = Relu(c) }"""
    )
    after.graph.initializer.extend(
        [
            onnx.numpy_helper.from_array((w * k[:, None, None, None]).astype(np.float32), "wf"),
            onnx.numpy_helper.from_array((b - m * k).astype(np.float32), "bf"),
        ]
    )
    feeds = {"image": np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    table = compare_layers(before, after, feeds, Tolerance(atol_rel=1e-4, rtol=1e-3))
    assert [r["tensor"] for r in table["rows"]] == ["logits"] and table["status"] == "passed"
    why = {u["tensor"]: u["why"] for u in table["unmatched"]}
    assert why["c"].startswith("same name, another meaning") and "bn" in why
