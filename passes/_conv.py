"""Helpers shared by the conv passes: a Conv's geometry read from onnx_ir (the record and the
auto_pad arithmetic are ``deploycc.core.conv``'s), new initializers and nodes with unique names,
and the release of initializers a rewrite orphaned.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from deploycc.core.conv import ConvGeometry, resolve_pads

FLOAT_TYPES = {ir.DataType.FLOAT, ir.DataType.DOUBLE, ir.DataType.FLOAT16}


def static_shape(value: ir.Value | None) -> tuple[int, ...] | None:
    if value is None or value.shape is None:
        return None
    dims = []
    for d in value.shape:
        if not isinstance(d, int):
            return None
        dims.append(d)
    return tuple(dims)


def ints_attr(node: ir.Node, name: str, default=None):
    attr = node.attributes.get(name)
    return tuple(int(v) for v in attr.value) if attr is not None else default


def int_attr(node: ir.Node, name: str, default: int) -> int:
    attr = node.attributes.get(name)
    return int(attr.value) if attr is not None else default


def str_attr(node: ir.Node, name: str, default: str) -> str:
    attr = node.attributes.get(name)
    return str(attr.value) if attr is not None else default


def conv_geometry(node: ir.Node) -> tuple[ConvGeometry | None, str | None]:
    """The geometry of Conv ``node`` or (None, why not): needs a constant-shaped weight, and a
    static input shape when auto_pad is SAME_*."""
    w = node.inputs[1] if len(node.inputs) > 1 else None
    w_shape = static_shape(w) or (
        tuple(w.const_value.shape.numpy()) if w is not None and w.const_value is not None else None
    )
    if w_shape is None:
        return None, "the weight shape is not static"
    rank = len(w_shape) - 2
    kernel = ints_attr(node, "kernel_shape", tuple(w_shape[2:]))
    strides = ints_attr(node, "strides", (1,) * rank)
    dilations = ints_attr(node, "dilations", (1,) * rank)
    in_shape = static_shape(node.inputs[0])
    auto_pad = str_attr(node, "auto_pad", "NOTSET")
    pads = resolve_pads(
        auto_pad, ints_attr(node, "pads", None), in_shape[2:] if in_shape else None, kernel, strides, dilations
    )
    if pads is None:
        return None, f"auto_pad {auto_pad} needs a static input shape to resolve"
    return ConvGeometry(kernel, strides, dilations, pads, int_attr(node, "group", 1), in_shape, w_shape[0]), None


def set_conv_attrs(node: ir.Node, *, kernel=None, dilations=None, pads=None) -> None:
    """Overwrite kernel_shape / dilations / pads; explicit pads always drop auto_pad."""
    if kernel is not None:
        node.attributes["kernel_shape"] = ir.AttrInt64s("kernel_shape", list(kernel))
    if dilations is not None:
        node.attributes["dilations"] = ir.AttrInt64s("dilations", list(dilations))
    if pads is not None:
        node.attributes.pop("auto_pad", None)
        node.attributes["pads"] = ir.AttrInt64s("pads", list(pads))


def has_input(node: ir.Node, index: int) -> bool:
    return len(node.inputs) > index and node.inputs[index] is not None


def new_initializer(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    """Register ``array`` under a name derived from ``name`` that no initializer uses yet."""
    taken = set(graph.initializers)
    unique, i = name, 1
    while unique in taken:
        unique, i = f"{name}.{i}", i + 1
    value = ir.Value(
        name=unique,
        shape=ir.Shape(array.shape),
        type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
        const_value=ir.tensor(array, name=unique),
    )
    graph.register_initializer(value)
    return value


def unique_node_name(graph: ir.Graph, base: str) -> str:
    taken = {n.name for n in graph}
    unique, i = base, 1
    while unique in taken:
        unique, i = f"{base}.{i}", i + 1
    return unique


def release(graph: ir.Graph, values) -> None:
    """Unregister the initializers among ``values`` that a rewrite left without any use, so a
    pass leaves no dangling weights behind (a shared weight still in use stays)."""
    for v in values:
        if v is None or v.name not in graph.initializers or graph.initializers[v.name] is not v:
            continue
        if not v.uses() and not v.is_graph_output() and not v.is_graph_input():
            graph.initializers.pop(v.name)


def is_param(value: ir.Value | None) -> str | None:
    """None when ``value`` is a constant, non-input initializer usable in a fold; else why not."""
    if value is None or value.const_value is None:
        return f"parameter {getattr(value, 'name', None)!r} is not a constant initializer"
    if value.is_graph_input():
        return f"initializer {value.name!r} is also a graph input (it can be overridden at run time)"
    return None
