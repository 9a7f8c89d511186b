"""fuse: tile back-propagation, the working-set and DRAM model, the DP, the written plan, and TVM
compiling each group as one fused function."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_model

from deploycc.passes import FuseGroups, PassContext, op_histogram, run_passes
from deploycc.passes._fusion_cost import Costs, Op, Tensor, axis_extents, evaluate, partition
from deploycc.targets import Target

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
INVERTED_RESIDUAL = f"""{HEAD} g (float[1,8,64,64] x) => (float[1,8,64,64] y)
{{ a = Conv(x, w1, b1)
   r = Relu(a)
   d = Conv<pads=[1,1,1,1], group=32>(r, w2, b2)
   r2 = Relu(d)
   p = Conv(r2, w3, b3)
   y = Add(p, x) }}"""
IR_WEIGHTS = {"w1": (32, 8, 1, 1), "b1": (32,), "w2": (32, 1, 3, 3), "b2": (32,), "w3": (8, 32, 1, 1), "b3": (8,)}


def cpu(memory=1 << 20) -> Target:
    return Target(
        "cpu-test",
        "tvm",
        "fp32",
        hardware={"peak_ops": {"fp32": 195e9}, "dram_bandwidth": 25e9, "onchip_memory": memory},
    )


def fuse(model, target=None, **options):
    p = FuseGroups(PassContext(target=target or cpu(), options=options))
    out, records = run_passes(model, [p])
    return out, records[0]


def test_conv_extent_is_out_minus_one_times_stride_plus_dilated_kernel():
    t = {"i": Tensor("i", 1, 1, (100, 100), 4), "o": Tensor("o", 1, 1, (48, 48), 4)}
    op = Op("c", "Conv", ("i",), "o", kernel=(3, 3), stride=(2, 2), dilation=(2, 2), pad_begin=(0, 0))
    sums = axis_extents([op], t, 0, 8)
    assert sums["i"][1] == (8 - 1) * 2 + (3 - 1) * 2 + 1  # 19 rows for an 8-row output tile
    assert sums["o"] == (48, 8)


def test_padding_is_clipped_at_the_borders():
    t = {"i": Tensor("i", 1, 1, (16, 16), 4), "o": Tensor("o", 1, 1, (16, 16), 4)}
    op = Op("c", "Conv", ("i",), "o", kernel=(3, 3), pad_begin=(1, 1))
    total, largest = axis_extents([op], t, 0, 4)["i"]
    assert largest == 6 and total == 5 + 6 + 6 + 5  # edge tiles lose the padded row


def test_inverted_residual_becomes_one_group_with_its_plan_written():
    model = make_model(INVERTED_RESIDUAL, IR_WEIGHTS)
    out, rec = fuse(model)
    assert rec.modified and op_histogram(out) == op_histogram(model) and rec.verification[0].ok
    [group] = rec.log.stats["groups"]
    assert [n.op_type for n in out.graph.node] == ["Conv", "Relu", "Conv", "Relu", "Conv", "Add"]
    assert group["ops"] == [n.name for n in out.graph.node] and group["output"] == "y"
    assert group["working_set"] <= rec.log.stats["budget"] and group["dram_after"] < group["dram_before"]
    plan = json.loads({p.key: p.value for p in out.metadata_props}["deploycc.fusion_plan"])
    assert plan["groups"][0]["id"] == "fg0" and plan["onchip_memory"] == 1 << 20
    meta = {p.key: p.value for p in out.graph.node[2].metadata_props}
    assert meta["deploycc.fusion.group"] == "fg0" and meta["deploycc.fusion.tile"] == "x".join(map(str, group["tile"]))


def test_running_fuse_twice_changes_nothing_the_second_time():
    out, _ = fuse(make_model(INVERTED_RESIDUAL, IR_WEIGHTS))
    _again, rec = fuse(out)
    assert not rec.modified


def test_no_group_when_no_tile_fits_the_on_chip_memory():
    _out, rec = fuse(make_model(INVERTED_RESIDUAL, IR_WEIGHTS), target=cpu(memory=256))
    assert not rec.modified and rec.log.stats["groups"] == []


def test_a_group_the_model_scores_as_a_loss_is_never_formed():
    # tiny activations, big weights that do not fit: streaming them once per tile costs more than it saves
    t = {n: Tensor(n, 1, 64, (32, 32), 4) for n in ("x", "a", "b")}
    ops = [
        Op("c1", "Conv", ("x",), "a", weight_bytes=600_000, unfused_bytes=t["x"].bytes + t["a"].bytes + 600_000),
        Op("c2", "Conv", ("a",), "b", weight_bytes=600_000, unfused_bytes=t["a"].bytes + t["b"].bytes + 600_000),
    ]
    costs = Costs(bandwidth=25e9, mac_rate=97.5e9, budget=700_000)
    assert evaluate(ops, t, costs) is None
    plan = partition(ops, t, {"a": {"c2"}, "b": set()}, {"b"}, costs)
    assert plan.groups == [] and plan.dram_fused == plan.dram_unfused


def test_a_value_used_outside_stops_the_group():
    text = f"""{HEAD} g (float[1,8,32,32] x) => (float[1,8,32,32] y, float[1,32,32,32] r)
    {{ a = Conv(x, w1, b1)
       r = Relu(a)
       y = Conv(r, w3, b3) }}"""
    _out, rec = fuse(make_model(text, IR_WEIGHTS))
    for g in rec.log.stats["groups"]:
        assert "Relu_1" not in g["ops"][:-1]  # r is a graph output: it may only end a group


def test_int8_target_counts_one_byte_per_value():
    model = make_model(INVERTED_RESIDUAL, IR_WEIGHTS)
    _, fp32 = fuse(model)
    int8 = Target(
        "i8", "ort", "int8", hardware={"peak_ops": {"int8": 5.7e12}, "dram_bandwidth": 137e9, "onchip_memory": 1 << 20}
    )
    _, rec = fuse(model, target=int8)
    assert rec.log.stats["dram_bytes_unfused"] * 4 == fp32.log.stats["dram_bytes_unfused"]


def test_tvm_compiles_each_group_as_one_fused_function(tmp_path):
    pytest.importorskip("tvm")
    from deploycc.core.numerics import random_feeds, run_reference, value_specs
    from deploycc.targets import load_target
    from deploycc.targets.tvm.backend import TVMBackend

    model, _rec = fuse(make_model(INVERTED_RESIDUAL, IR_WEIGHTS))
    backend = TVMBackend()
    result = backend.compile(model, load_target("cpu"), tmp_path, {})
    fusion = result.info["fusion"]
    assert fusion["groups_planned"] == fusion["groups_fused"] == 1
    assert fusion["function_of_group"] == {"fg0": "deploycc_fg0"}
    assert fusion["primfuncs"]["deploycc_fg0"] >= 6  # all six ops' blocks in one PrimFunc
    specs = value_specs(model.graph.input)
    manifest = {
        "inputs": [s.to_dict() for s in specs],
        "outputs": [s.to_dict() for s in value_specs(model.graph.output)],
        "backend_info": result.info,
    }
    feeds = random_feeds(specs, 0)
    got = backend.load(tmp_path, manifest).run(feeds)[0]
    np.testing.assert_allclose(got, run_reference(model, feeds)[0], rtol=1e-4, atol=1e-4)


def test_tvm_tiling_schedules_the_group_at_the_planned_tile_and_keeps_numerics():
    pytest.importorskip("tvm")
    import tvm
    from tvm import relax

    from deploycc.core.numerics import random_feeds, run_reference, value_specs
    from deploycc.targets.tvm import fusion as tvm_fusion

    model, rec = fuse(make_model(INVERTED_RESIDUAL, IR_WEIGHTS))
    mod, fusion = tvm_fusion.import_onnx(model, tiling=True)
    ex = tvm_fusion.build(mod, tvm.target.Target({"kind": "llvm"}), fusion)
    summary = fusion.summary()
    assert summary["tiled"] == {"deploycc_fg0": rec.log.stats["groups"][0]["tile"]}
    assert fusion.tiled["deploycc_fg0"] >= 5  # producers moved into the tile loop
    feeds = random_feeds(value_specs(model.graph.input), 0)
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(feeds["x"])).numpy()
    np.testing.assert_allclose(got, run_reference(model, feeds)[0], rtol=1e-4, atol=1e-4)
