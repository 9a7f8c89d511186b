"""Per-node placement report: which unit each node of a graph runs on under a target's legality.

For a target whose ``[legality]`` names an ``accelerator`` (DLA, NPU) and a ``fallback`` unit (GPU,
CPU), every node is checked against the rule tables documented in :mod:`deploycc.targets.legality`; the
first table that a node breaks decides that it falls back, and the report names that table and
each broken rule. A node no rule objects to runs on the accelerator. Ops that never become a layer
(Constant, Shape ...) are reported as ``folded``. Reading geometry needs static shapes, so the model
is shape-inferred first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from deploycc.core.conv import ConvGeometry, resolve_pads

from . import legality as L


@dataclass(frozen=True)
class Placement:
    node: str
    op: str
    unit: str  # the accelerator, the fallback unit, or "folded"
    rule: str  # the legality table that decided ("legality.conv", "legality.ops", ...) or "ok"
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self) | {"reasons": list(self.reasons)}


def placements(model: onnx.ModelProto, rules: dict) -> list[Placement]:
    """One :class:`Placement` per node of ``model`` under the ``[legality]`` table ``rules``."""
    model = _with_shapes(model)
    graph = _GraphFacts(model)
    accel, fallback = rules.get("accelerator", "accelerator"), rules.get("fallback", "host")
    out = []
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        if node.op_type in L.NOT_LAYERS:
            out.append(Placement(name, node.op_type, "folded", "not a layer"))
            continue
        table, reasons = _check(node, graph, rules)
        unit = fallback if reasons else accel
        out.append(Placement(name, node.op_type, unit, table if reasons else "ok", tuple(reasons)))
    return out


def summary(items: list[Placement], rules: dict) -> dict:
    accel = rules.get("accelerator", "accelerator")
    layers = [p for p in items if p.unit != "folded"]
    on = sum(p.unit == accel for p in layers)
    return {
        "accelerator": accel,
        "fallback": rules.get("fallback"),
        "layers": len(layers),
        "on_accelerator": on,
        "fallbacks": len(layers) - on,
    }


def placement_map(before: onnx.ModelProto, after: onnx.ModelProto, target) -> dict:
    """Per node, accelerator or fallback and the deciding rule, for the graph before and after a
    target's passes (``deploycc build`` and ``deploycc inspect --target`` report it); a target
    whose ``[legality]`` names no accelerator gets a note instead."""
    rules = target.legality
    if not rules.get("accelerator"):
        return {
            "target": target.name,
            "note": f"target {target.name} names no accelerator: every node runs on its one unit",
        }
    out = {"target": target.name}
    for when, model in (("before", before), ("after", after)):
        items = placements(model, rules)
        out[when] = {"summary": summary(items, rules), "nodes": [p.to_dict() for p in items]}
    return out


def _check(node: onnx.NodeProto, g: _GraphFacts, rules: dict) -> tuple[str, list[str]]:
    ops = rules.get("ops")
    if ops is not None and node.op_type not in ops:
        return "legality.ops", [f"{rules.get('accelerator', 'the accelerator')} has no {node.op_type} layer"]
    op = node.op_type
    if op == "Conv":
        return "legality.conv", L.conv_violations(_conv_geometry(node, g), rules.get("conv", {}))
    if op == "ConvTranspose":
        return "legality.deconv", L.deconv_violations(_conv_geometry(node, g), rules.get("deconv", {}))
    if op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
        return "legality.pool", L.pool_violations(*_pool_geometry(node, g), rules.get("pool", {}))
    if op == "Resize":
        return "legality.resize", L.resize_violations(*_resize_facts(node, g), rules.get("resize", {}))
    if op == "Softmax":
        return "legality.softmax", L.softmax_violations(rules.get("softmax", {}))
    if op in L.ELEMENTWISE:
        return "legality.elementwise", L.elementwise_violations(op, rules.get("elementwise", {}))
    if op == "Concat":
        rank = len(g.shape(node.output[0]) or ())
        return "legality.concat", L.concat_violations(_attr(node, "axis", 0), rank, rules.get("concat", {}))
    return "ok", []


class _GraphFacts:
    """Static shapes and constant values of a shape-inferred model, by tensor name."""

    def __init__(self, model: onnx.ModelProto):
        self.shapes: dict[str, tuple[int, ...]] = {}
        for vi in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
            dims = vi.type.tensor_type.shape.dim
            if all(d.HasField("dim_value") for d in dims):
                self.shapes[vi.name] = tuple(d.dim_value for d in dims)
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)

    def shape(self, name: str) -> tuple[int, ...] | None:
        if name in self.consts:
            return tuple(self.consts[name].shape)
        return self.shapes.get(name)

    def const(self, name: str):
        return self.consts.get(name) if name else None


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _conv_geometry(node: onnx.NodeProto, g: _GraphFacts) -> ConvGeometry:
    wshape = g.shape(node.input[1]) or ()
    kernel = tuple(_attr(node, "kernel_shape", wshape[2:]))
    n = len(kernel)
    strides = tuple(_attr(node, "strides", [1] * n))
    dilations = tuple(_attr(node, "dilations", [1] * n))
    xshape = g.shape(node.input[0])
    pads = resolve_pads(
        _str(_attr(node, "auto_pad", "NOTSET")),
        _attr(node, "pads", None),
        xshape[2:] if xshape else None,
        kernel,
        strides,
        dilations,
    )
    if pads is None:  # SAME_* without a static input shape: the report judges the explicit pads
        pads = tuple(_attr(node, "pads", [0] * 2 * n))
    group = int(_attr(node, "group", 1))
    out_channels = wshape[0] if node.op_type == "Conv" and wshape else (wshape[1] * group if len(wshape) > 1 else 1)
    return ConvGeometry(kernel, strides, dilations, pads, group, out_channels=int(out_channels))


def _pool_geometry(node: onnx.NodeProto, g: _GraphFacts) -> tuple[tuple, tuple, tuple]:
    if node.op_type.startswith("Global"):
        shape = g.shape(node.input[0]) or (0, 0, 0, 0)
        window = tuple(shape[2:])
        return window, (1,) * len(window), (0,) * 2 * len(window)
    window = tuple(_attr(node, "kernel_shape", ()))
    n = len(window)
    return window, tuple(_attr(node, "strides", [1] * n)), tuple(_attr(node, "pads", [0] * 2 * n))


def _resize_facts(node: onnx.NodeProto, g: _GraphFacts) -> tuple[str, str, list[float] | None, bool]:
    mode = _str(_attr(node, "mode", "nearest"))
    coordinate_mode = _str(_attr(node, "coordinate_transformation_mode", "half_pixel"))
    sizes = g.const(node.input[3]) if len(node.input) > 3 else None
    by_sizes = sizes is not None and np.size(sizes) > 0
    xs, ys = g.shape(node.input[0]), g.shape(node.output[0])
    scales = None
    if xs and ys and len(xs) == len(ys) and all(xs[2:]):
        scales = [o / i for i, o in zip(xs[2:], ys[2:])]
    return mode, coordinate_mode, scales, by_sizes


def _with_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # the report still works from whatever shapes the model already carries
        return model
