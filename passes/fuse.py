"""fuse: partition the graph into cache-locality-aware fusion groups and write the plan into it.

The cost model and the dynamic programme are in ``_fusion_cost`` (docs/passes.md, "The cost
model"): an output tile is back-propagated through each op (input extent = (out - 1) * stride +
(k - 1) * dilation + 1), the working set (tile extents of every tensor plus resident weights)
must fit alpha * the target's ``[hardware] onchip_memory``, and groups and tile sizes are chosen
to minimise DRAM bytes / bandwidth + recompute MACs / MAC rate. A group the model scores as a loss
is never formed. Fusable ops: 2-D Conv with a constant weight, inference BatchNormalization and
elementwise ops (unary activations; Add/Sub/Mul/Div whose non-constant operands have the
output's spatial size or 1 x 1), all with static 4-D shapes and one batch size. Bytes per
element follow the target's precision (int8 targets move 1 byte per value), else the dtype.

The plan (documented form, read by ``deploycc.targets.tvm.fusion``):
  * node metadata ``deploycc.fusion.group`` = group id (``fg0``, ``fg1`` ...) and
    ``deploycc.fusion.tile`` = ``<th>x<tw>`` on every node of a group;
  * model metadata ``deploycc.fusion_plan`` = JSON {version, target, onchip_memory, alpha, budget,
    groups: [{id, ops, output, tile, tiles, working_set, weights_resident, dram_before,
    dram_after, recompute_macs, seconds_before, seconds_after}], dram_unfused, dram_fused}.
The pass adds no nodes and changes no computation, so numerics are untouched by construction
(and still verified). Options: ``fuse.alpha`` (default 0.5), ``fuse.max_ops`` (default 10).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, cast

import numpy as np
import onnx_ir as ir

from deploycc.targets import figures_for

from ._conv import conv_geometry, static_shape
from ._fusion_cost import Costs, Op, Plan, Tensor, partition
from .base import DeployPass

GROUP_KEY, TILE_KEY, PLAN_KEY = "deploycc.fusion.group", "deploycc.fusion.tile", "deploycc.fusion_plan"
_UNARY = {
    "Relu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Tanh",
    "Elu",
    "Softplus",
    "Neg",
    "Abs",
    "Sqrt",
    "Exp",
    "Identity",
}
_BINARY = {"Add", "Sub", "Mul", "Div"}


class FuseGroups(DeployPass):
    name = "fuse"
    summary = (
        "plan cache-locality-aware fusion groups and tile sizes (DP over DRAM bytes + recompute); "
        "TVM compiles each as one function"
    )
    requires_doc = ("static 4-D shapes on the ops to group (others are left alone)",)
    ensures_doc = (
        "every tagged node belongs to a planned group; each group has one exit and is convex",
        "every group's estimated time is strictly below its members' unfused time",
    )
    option_checks: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {
        "fuse.max_ops": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
        "fuse.alpha": (
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf"),
            "a finite number > 0 (the share of on-chip memory a group may use)",
        ),
    }

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        before = _snapshot(model)
        costs, meta = self._costs()
        ops, tensors = extract(graph, meta["elem"])
        consumers = _consumers(graph)
        outputs = {v.name for v in graph.outputs}
        plan = partition(ops, tensors, consumers, outputs, costs, int(self.ctx.options.get("fuse.max_ops", 10)))
        self._write(model, plan, meta)
        self.log.stats.update(_stats(plan, meta))
        return ir.passes.PassResult(model, modified=_snapshot(model) != before)

    def ensures(self, model: ir.Model) -> None:
        plan = json.loads(model.metadata_props.get(PLAN_KEY, '{"groups": []}'))
        groups = {g["id"]: g for g in plan["groups"]}
        consumers = _consumers(model.graph)
        for node in model.graph:
            gid = node.metadata_props.get(GROUP_KEY)
            if gid is not None and (gid not in groups or node.name not in groups[gid]["ops"]):
                raise ir.passes.PostconditionError(f"node {node.name!r} is tagged {gid} but not in the plan")
        for g in groups.values():
            if g["seconds_after"] >= g["seconds_before"]:
                raise ir.passes.PostconditionError(f"group {g['id']} is scored as a loss")
            members = set(g["ops"])
            for node in model.graph:
                if node.name in members and node.outputs[0].name != g["output"]:
                    if node.outputs[0].is_graph_output() or not consumers.get(node.outputs[0].name, set()) <= members:
                        raise ir.passes.PostconditionError(f"group {g['id']}: {node.name!r} has a use outside it")

    def _costs(self) -> tuple[Costs, dict]:
        target = self.ctx.target
        hw = figures_for(target)
        alpha = float(self.ctx.options.get("fuse.alpha", 0.5))
        meta = {
            "target": target.name if target else None,
            "onchip_memory": hw.onchip_memory,
            "alpha": alpha,
            "budget": int(alpha * hw.onchip_memory),
            "elem": hw.bytes_per_element,
            "dram_bandwidth": hw.dram_bandwidth,
            "mac_rate": hw.mac_rate,
        }
        return Costs(hw.dram_bandwidth, hw.mac_rate, int(alpha * hw.onchip_memory)), meta

    def _write(self, model: ir.Model, plan: Plan, meta: dict) -> None:
        for node in model.graph:
            node.metadata_props.pop(GROUP_KEY, None)
            node.metadata_props.pop(TILE_KEY, None)
        model.metadata_props.pop(PLAN_KEY, None)
        if not plan.groups:
            return
        by_name = {n.name: n for n in model.graph}
        groups = []
        for k, g in enumerate(plan.groups):
            gid = f"fg{k}"
            for name in g.ops:
                by_name[name].metadata_props[GROUP_KEY] = gid
                by_name[name].metadata_props[TILE_KEY] = f"{g.tile[0]}x{g.tile[1]}"
            groups.append({"id": gid, **g.to_dict()})
            self.log.rewrite(
                g.ops,
                f"fusion group {gid}: tile {g.tile[0]}x{g.tile[1]}, working set {g.working_set} B, "
                f"DRAM {g.dram_before} -> {g.dram_after} B, recompute {g.recompute_macs} MACs",
            )
        doc = {
            "version": 1,
            **{k: v for k, v in meta.items() if k != "elem"},
            "groups": groups,
            "dram_unfused": plan.dram_unfused,
            "dram_fused": plan.dram_fused,
        }
        model.metadata_props[PLAN_KEY] = json.dumps(doc, sort_keys=True)


def extract(graph: ir.Graph, elem: int | None) -> tuple[list[Op], dict[str, Tensor]]:
    """The cost model's view of ``graph``: one Op per node (topological order) and the 4-D tensors."""
    tensors: dict[str, Tensor] = {}

    def tensor(v: ir.Value | None) -> Tensor | None:
        shape = static_shape(v)
        if v is None or shape is None or len(shape) != 4 or v.dtype is None:
            return None
        if v.name not in tensors:
            tensors[v.name] = Tensor(v.name, shape[0], shape[1], (shape[2], shape[3]), elem or v.dtype.itemsize)
        return tensors[v.name]

    ops = []
    for node in graph:
        ops.append(_op(node, tensor, elem))
    return ops, tensors


def _op(node: ir.Node, tensor, elem: int | None) -> Op:
    ins = [v for v in node.inputs if v is not None]
    acts = [v for v in ins if v.const_value is None]
    weights = sum(_bytes(v, elem) for v in ins if v.const_value is not None)
    moved = sum(_bytes(v, elem) for v in acts) + sum(_bytes(v, elem) for v in node.outputs) + weights
    out = tensor(node.outputs[0]) if len(node.outputs) == 1 else None
    act_t = [tensor(v) for v in acts]
    base: dict[str, Any] = {
        "name": node.name,
        "op_type": node.op_type,
        "inputs": tuple(v.name for v in acts),
        "output": node.outputs[0].name,
        "weight_bytes": weights,
        "unfused_bytes": moved,
    }
    if out is None or any(t is None or t.batch != out.batch for t in act_t) or node.domain != "":
        return Op(**base, fusable=False)
    if node.op_type == "Conv" and node.inputs[1] is not None and node.inputs[1].const_value is not None:
        g, _ = conv_geometry(node)
        if g is None or g.rank != 2 or len(acts) != 1:
            return Op(**base, fusable=False)
        k2 = cast(tuple[int, int], g.kernel)  # rank 2, checked above
        s2, d2, p2 = (
            cast(tuple[int, int], g.strides),
            cast(tuple[int, int], g.dilations),
            cast(tuple[int, int], g.pads[:2]),
        )
        return Op(**base, kernel=k2, stride=s2, dilation=d2, pad_begin=p2, macs=g.macs() or 0)
    elementwise = node.op_type in _UNARY | _BINARY or (
        node.op_type == "BatchNormalization" and len([o for o in node.outputs if o.uses()]) <= 1
    )
    aligned = all(t.size in (out.size, (1, 1)) for t in act_t) and len(acts) >= 1
    return Op(**base, fusable=elementwise and aligned)


def _bytes(v: ir.Value, elem: int | None) -> float:
    shape = static_shape(v)
    if shape is None or v.dtype is None:
        return 0
    return int(np.prod(shape)) * (elem or v.dtype.itemsize)


def _consumers(graph: ir.Graph) -> dict[str, set[str]]:
    users: dict[str, set[str]] = {}
    for node in graph:
        for v in node.inputs:
            if v is not None:
                users.setdefault(v.name, set()).add(node.name)
    return users


def _snapshot(model: ir.Model):
    return (
        model.metadata_props.get(PLAN_KEY),
        [(n.metadata_props.get(GROUP_KEY), n.metadata_props.get(TILE_KEY)) for n in model.graph],
    )


def _stats(plan: Plan, meta: dict) -> dict:
    return {
        "groups": [{"id": f"fg{k}", **g.to_dict()} for k, g in enumerate(plan.groups)],
        "dram_bytes_unfused": plan.dram_unfused,
        "dram_bytes_fused": plan.dram_fused,
        "recompute_macs": plan.recompute_macs,
        "onchip_memory": meta["onchip_memory"],
        "alpha": meta["alpha"],
        "budget": meta["budget"],
        "target": meta["target"],
    }
