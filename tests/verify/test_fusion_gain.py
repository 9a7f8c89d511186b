"""verify/fusion_gain.py: a planned group cut out as its own model, compiled fused and unfused by
TVM, timed interleaved, with the cost model's prediction beside the measurement."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort
import pytest
from helpers import make_model

from deploycc.passes import FuseGroups, PassContext, run_passes
from deploycc.targets import load_target
from deploycc.verify.fusion_gain import GROUP_KEY, cut_groups, measure_groups
from deploycc.verify.measure import Protocol

pytest.importorskip("tvm")

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
# a stem conv, then an inverted residual (expand, depthwise, project, add): the plan's group is the unit
NET = f"""{HEAD} g (float[1,3,32,32] image) => (float[1,8,32,32] y)
{{ x = Conv<pads=[1,1,1,1]>(image, w0)
   a = Conv(x, w1, b1)
   r = Relu(a)
   d = Conv<pads=[1,1,1,1], group=32>(r, w2, b2)
   r2 = Relu(d)
   p = Conv(r2, w3, b3)
   y = Add(p, x) }}"""
WEIGHTS = {
    "w0": (8, 3, 3, 3),
    "w1": (32, 8, 1, 1),
    "b1": (32,),
    "w2": (32, 1, 3, 3),
    "b2": (32,),
    "w3": (8, 32, 1, 1),
    "b3": (8,),
}


@pytest.fixture(scope="module")
def planned():
    target = load_target("cpu")
    out, _ = run_passes(make_model(NET, WEIGHTS), [FuseGroups(PassContext(target))], verify=False)
    plan = json.loads({p.key: p.value for p in out.metadata_props}["deploycc.fusion_plan"])
    assert plan["groups"], "the cpu target's cost model plans no group for the unit"
    return out, plan, target


def test_a_group_is_cut_out_with_its_weights_and_only_activations_as_inputs(planned):
    model, plan, _ = planned
    cuts = cut_groups(model, plan)
    assert len(cuts) == len(plan["groups"])
    for cut in cuts:
        assert [n.name for n in cut.fused.graph.node] == cut.plan["ops"]
        assert all(any(p.key == GROUP_KEY for p in n.metadata_props) for n in cut.fused.graph.node)
        assert not any(p.key == GROUP_KEY for n in cut.unfused.graph.node for p in n.metadata_props)
        inits = {t.name for t in cut.fused.graph.initializer}
        assert [i.name for i in cut.fused.graph.input if i.name not in inits] != []
        assert [o.name for o in cut.fused.graph.output] == [cut.plan["output"]]
    # the cut computes what the same values compute in the whole model
    cut = next(c for c in cuts if c.plan["output"] == "y")
    names = [i.name for i in cut.unfused.graph.input if i.name not in {t.name for t in cut.unfused.graph.initializer}]
    upto = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(model)).extract_model(["image"], [*names, "y"])
    feeds = {"image": np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)}
    *inputs, y = ort.InferenceSession(upto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    part = ort.InferenceSession(cut.unfused.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(part.run(None, dict(zip(names, inputs)))[0], y, rtol=1e-5, atol=1e-5)


def test_each_group_gets_its_prediction_and_its_measurement(planned):
    model, plan, target = planned
    protocol = Protocol(warmup=1, min_repeats=1, max_repeats=9, rounds=3)
    rows = measure_groups(model, plan, target, protocol, threads=1)
    assert [r["group"] for r in rows] == [g["id"] for g in plan["groups"]]
    for row, group in zip(rows, plan["groups"]):
        assert row["outputs_agree"] is True and row["backend_split"] == ""
        assert row["dram_saved_mb"] == round((group["dram_before"] - group["dram_after"]) / 1e6, 2)
        assert row["predicted_saved_ms"] > 0 and row["unfused_ms"] > 0 and row["fused_ms"] > 0
        assert row["measured_saved_ms"] == pytest.approx(row["unfused_ms"] - row["fused_ms"], abs=2e-3)
