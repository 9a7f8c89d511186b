"""Random conv chains as ONNX models: the property tests' generator, shared with the long fuzz
(``bench/fuzz_passes.py``).

A chain is one NCHW input followed by layers; each layer is a Conv (any group that divides the
channels, kernel 1-3, stride 1-2, dilation 1-4, explicit asymmetric pads or auto_pad
SAME_UPPER / SAME_LOWER / VALID, bias or none) or a ConvTranspose (grouped, stride 1-2),
with an inference BatchNormalization after it (or before it), an optional Relu, and a residual
Add when the shapes allow. BatchNorm variances go down to 1e-12; epsilon is absent (1e-5) or
explicit. Spatial sizes are drawn independently of the dilations, so H and W are often not
multiples of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from hypothesis import assume
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


@dataclass
class Layer:
    kind: str  # "conv" | "convT"
    cout: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]
    auto_pad: str
    group: int
    bias: bool
    bn: str  # "after" | "before" | "none"
    relu: bool
    residual: bool
    eps: float | None


@dataclass
class Chain:
    batch: int
    channels: int
    size: tuple[int, int]
    layers: list[Layer] = field(default_factory=list)


def out_size(n: int, layer: Layer, axis: int) -> int:
    k, s, d = layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
    if layer.kind == "convT":
        return (n - 1) * s - layer.pads[axis] - layer.pads[axis + 2] + (k - 1) * d + 1
    if layer.auto_pad.startswith("SAME"):
        return -(-n // s)
    pads = 0 if layer.auto_pad == "VALID" else layer.pads[axis] + layer.pads[axis + 2]
    return (n + pads - (k - 1) * d - 1) // s + 1


@st.composite
def chains(draw, max_layers: int = 3, max_size: int = 20) -> Chain:
    small = draw(st.booleans())  # small maps: dilations reach past them (degenerate taps)
    hi = 6 if small else max_size
    chain = Chain(
        draw(st.sampled_from([1, 1, 2])),
        draw(st.integers(1, 6)),
        (draw(st.integers(3, hi)), draw(st.integers(3, max_size))),
    )
    c, size = chain.channels, chain.size
    for _ in range(draw(st.integers(1, max_layers))):
        layer = draw(_layer(c))
        new = (out_size(size[0], layer, 0), out_size(size[1], layer, 1))
        assume(min(new) >= 1)
        layer.residual = layer.residual and new == size and layer.cout == c
        chain.layers.append(layer)
        c, size = layer.cout, new
    if any(lay.auto_pad.startswith("SAME") and max(lay.dilation) > 1 for lay in chain.layers):
        for lay in chain.layers:  # onnx.reference (the fallback oracle there) cannot run grouped ConvTranspose
            if lay.kind == "convT":
                lay.group = 1
    return chain


@st.composite
def _layer(draw, c: int) -> Layer:
    kind = draw(st.sampled_from(["conv"] * 5 + ["convT"]))
    group = draw(st.sampled_from([g for g in (1, 2, 3, c) if c % g == 0]))
    cout = group * draw(st.integers(1, 3)) if group > 1 else draw(st.integers(1, 6))
    if draw(st.booleans()) and group == c:
        cout = c  # depthwise
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([(1, 1), (1, 1), (1, 1), (2, 2), (1, 2), (2, 1)]))
    dil_max = 2 if kind == "convT" else 4
    d = draw(st.integers(1, dil_max))  # equal dilations half the time (space-to-batch needs them)
    dilation = (d, d) if draw(st.booleans()) else (d, draw(st.integers(1, dil_max)))
    pads = tuple(draw(st.integers(0, 4)) for _ in range(4))
    auto_pad = "NOTSET" if kind == "convT" else draw(st.sampled_from(("NOTSET",) * 3 + AUTO_PADS))
    if kind == "convT":
        pads = tuple(min(p, k - 1) for p, k in zip(pads, kernel * 2))
    bn = draw(st.sampled_from(["after", "after", "before", "none"]))
    eps = draw(st.sampled_from([None, 1e-5, 1e-3, 1e-9]))
    return Layer(
        kind,
        cout,
        kernel,
        stride,
        dilation,
        pads,
        auto_pad,
        group,
        draw(st.booleans()),
        bn,
        draw(st.booleans()),
        draw(st.booleans()),
        eps,
    )


def build(chain: Chain, seed: int = 0) -> onnx.ModelProto:
    """The ONNX model of ``chain`` with fixed-seed weights (opset 17)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x, c = "x", chain.channels
    for i, layer in enumerate(chain.layers):
        if layer.bn == "before":
            x = _bn(nodes, inits, rng, f"bnb{i}", x, c, layer.eps)
        skip = x
        x = _conv(nodes, inits, rng, f"conv{i}", x, c, layer)
        c = layer.cout
        if layer.bn == "after":
            x = _bn(nodes, inits, rng, f"bn{i}", x, c, layer.eps)
        if layer.relu:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], name=f"relu{i}"))
            x = f"relu{i}"
        if layer.residual:
            nodes.append(helper.make_node("Add", [x, skip], [f"add{i}"], name=f"add{i}"))
            x = f"add{i}"
    n, (h, w) = chain.batch, chain.size
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, chain.channels, h, w])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return onnx.shape_inference.infer_shapes(model, strict_mode=True)


def _conv(nodes, inits, rng, name: str, x: str, c: int, layer: Layer) -> str:
    if layer.kind == "convT":
        shape = (c, layer.cout // layer.group, *layer.kernel)
    else:
        shape = (layer.cout, c // layer.group, *layer.kernel)
    inputs = [x, _init(inits, f"{name}.w", rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:])))]
    if layer.bias:
        inputs.append(_init(inits, f"{name}.b", rng.standard_normal(layer.cout)))
    attrs = {
        "kernel_shape": list(layer.kernel),
        "strides": list(layer.stride),
        "dilations": list(layer.dilation),
        "group": layer.group,
    }
    if layer.auto_pad == "NOTSET":
        attrs["pads"] = list(layer.pads)
    else:
        attrs["auto_pad"] = layer.auto_pad
    op = "ConvTranspose" if layer.kind == "convT" else "Conv"
    nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
    return name


def _bn(nodes, inits, rng, name: str, x: str, c: int, eps: float | None) -> str:
    var = np.exp(rng.uniform(np.log(1e-12), np.log(10.0), c))
    var[rng.random(c) < 0.3] = 1e-12
    params = [rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(c), var]
    names = [_init(inits, f"{name}.{p}", a) for p, a in zip(("scale", "bias", "mean", "var"), params)]
    attrs = {} if eps is None else {"epsilon": eps}
    nodes.append(helper.make_node("BatchNormalization", [x, *names], [name], name=name, **attrs))
    return name


def _init(inits, name: str, array) -> str:
    inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
    return name
