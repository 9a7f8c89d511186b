"""Multiply-accumulate and parameter counts computed from the ONNX graph itself.

Convention (the SqueezeNAS papers'): a Conv costs out_elements x kh x kw x C_in / group; a
ConvTranspose costs in_elements x kh x kw x C_out / group; Gemm and MatMul cost M x N x K.
Other ops count 0 MACs. Shapes come from strict ONNX shape inference, so a model must have static
shapes. ``conv_macs`` is the conv-only total the SqueezeNAS tables publish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from deploycc.core.loader import infer_shapes_strict


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each op type ``model`` has, sorted by op type."""
    hist: dict[str, int] = {}
    for node in model.graph.node:
        hist[node.op_type] = hist.get(node.op_type, 0) + 1
    return dict(sorted(hist.items()))


@dataclass(frozen=True)
class LayerCost:
    name: str
    op: str
    output_shape: tuple
    macs: int
    params: int


def layer_costs(model: onnx.ModelProto) -> list[LayerCost]:
    model = infer_shapes_strict(model, model.graph.name or "model")
    shapes = _shapes(model)
    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    out = []
    for node in model.graph.node:
        params = sum(int(np.prod(inits[i])) for i in node.input if i in inits)
        macs = _node_macs(node, shapes)
        name = node.name or node.output[0]
        out.append(LayerCost(name, node.op_type, shapes.get(node.output[0], ()), macs, params))
    return out


def conv_macs(model: onnx.ModelProto) -> int:
    return sum(c.macs for c in layer_costs(model) if c.op in ("Conv", "ConvTranspose"))


def total_params(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def _shapes(model: onnx.ModelProto) -> dict[str, tuple]:
    shapes = {}
    for v in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    for t in model.graph.initializer:
        shapes[t.name] = tuple(t.dims)
    return shapes


def _node_macs(node: onnx.NodeProto, shapes: dict) -> int:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Conv":
        w = shapes.get(node.input[1], ())
        out = shapes.get(node.output[0], ())
        return _prod(out) * _prod(w[2:]) * w[1] if w and _known(out) else 0
    if node.op_type == "ConvTranspose":
        w = shapes.get(node.input[1], ())
        x = shapes.get(node.input[0], ())
        return _prod(x) * _prod(w[2:]) * w[1] if w and _known(x) else 0
    if node.op_type in ("Gemm", "MatMul"):
        a, out = shapes.get(node.input[0], ()), shapes.get(node.output[0], ())
        if not (a and _known(out)):
            return 0
        k = a[0] if node.op_type == "Gemm" and attrs.get("transA", 0) else a[-1]
        return _prod(out) * k
    return 0


def _prod(dims) -> int:
    return int(np.prod(dims)) if len(dims) else 1


def _known(dims) -> bool:
    return bool(dims) and all(d >= 0 for d in dims)
