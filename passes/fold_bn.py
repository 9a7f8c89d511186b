"""fold-bn: fold inference BatchNormalization into the Conv, ConvTranspose or Gemm that produces
its input, or into the zero-padded Conv that consumes its output.

Math (docs/passes.md, "The fold arithmetic"; implemented in ``_bn_math``). BN(y) = s * y + t
per channel with s = gamma / sqrt(var + eps), t = beta - mean * s.
  * Conv (any group, depthwise included): W'[o] = W[o] * s[o], b' = b * s + t.
  * ConvTranspose (weight [Cin, Cout/g, k...]): W'[i, j] = W[i, j] * s[(i // (Cin/g)) * (Cout/g) + j].
  * Gemm: B scaled along N (axis 0 when transB), C' = s * (beta * C) + t and beta := 1; alpha
    and transA do not enter.
  * BN before a Conv: W'[o, i] = W[o, i] * s[c(o, i)], b'[o] = b[o] + sum W[o, i, taps] * t[c(o, i)]
    with c(o, i) = (o // (Cout/g)) * (Cin/g) + i. Exact only when the conv has zero padding
    (padding would have been applied after the affine op, so border taps would miss t).
Computed in float64 and cast back to the weight's dtype; a missing ``epsilon`` means 1e-5 as the
float32 the attribute is (9.99999975e-6, what ONNX Runtime and onnx.reference use: with a variance
near 1e-12 the float64 1e-5 would shift the scale by 1e-8 relative).

Legal only when all of these hold; otherwise the BN stays and the trace says why:
  * BN has training_mode 0 and no running-statistics outputs in use;
  * the producer's output feeds only this BN and is not a graph output (forward fold: the BN
    output feeds only this Conv, as its data input, and is not a graph output);
  * weights, biases and the four BN parameters are constant initializers, none also a graph input;
  * all are float tensors; the BN parameters are 1-D with one value per channel;
  * var + eps > 0 for every channel and every folded value is finite in the original dtype.
Folded tensors always get new initializers (never an in-place overwrite), so a weight shared with
another node stays intact; initializers the fold orphaned are removed.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from . import _bn_math as bnm
from ._conv import FLOAT_TYPES, conv_geometry, has_input, int_attr, is_param, new_initializer, release
from .base import DeployPass

_PRODUCERS = ("Conv", "ConvTranspose", "Gemm")


class FoldBatchNorm(DeployPass):
    name = "fold-bn"
    summary = "fold inference BatchNormalization into Conv/ConvTranspose/Gemm (or a following unpadded Conv)"
    requires_doc = ("the model passes the ONNX checker",)
    ensures_doc = ("every BatchNormalization left in the graph has a logged refusal",)

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for bn in [n for n in model.graph if n.op_type == "BatchNormalization" and n.domain == ""]:
            modified |= self._fold(model.graph, bn)
        return ir.passes.PassResult(model, modified=modified)

    def ensures(self, model: ir.Model) -> None:
        refused = {r["node"] for r in self.log.refusals}
        silent = [n.name for n in model.graph if n.op_type == "BatchNormalization" and n.name not in refused]
        if silent:
            raise ir.passes.PostconditionError(f"BatchNormalization {silent[0]!r} was neither folded nor refused")

    def _fold(self, graph: ir.Graph, bn: ir.Node) -> bool:
        reason = _bn_refusal(bn)
        if reason:
            self.log.refuse(bn.name, reason)
            return False
        back = self._fold_into_producer(graph, bn)
        if back is True:
            return True
        forward = self._fold_into_consumer(graph, bn)
        if forward is True:
            return True
        self.log.refuse(bn.name, f"{back}; {forward}")
        return False

    def _fold_into_producer(self, graph: ir.Graph, bn: ir.Node) -> bool | str:
        node = bn.inputs[0].producer()
        if node is None or node.domain != "" or node.op_type not in _PRODUCERS:
            return "not after a Conv/ConvTranspose/Gemm"
        where = f"not folded into {node.op_type} {node.name!r}"
        reason = _producer_refusal(node, bn)
        if reason:
            return f"{where}: {reason}"
        try:
            s, t = _scale_shift(bn)
            new_w, new_b = _fold_math(node, s, t)
        except bnm.FoldError as exc:
            return f"{where}: {exc}"
        old = [node.inputs[1], node.inputs[2] if has_input(node, 2) else None, *bn.inputs[1:5]]
        _replace_params(graph, node, new_w, new_b)
        if node.op_type == "Gemm":
            node.attributes["beta"] = ir.AttrFloat32("beta", 1.0)
        _bypass(graph, bn, node.outputs[0])
        release(graph, old)
        self.log.rewrite(
            [node.name, bn.name],
            f"{node.op_type}+BatchNormalization -> {node.op_type}",
            weight_spread=bnm.spread(new_w),
        )
        return True

    def _fold_into_consumer(self, graph: ir.Graph, bn: ir.Node) -> bool | str:
        out = bn.outputs[0]
        users = list(out.uses())
        if out.is_graph_output() or len(users) != 1 or users[0].node.op_type != "Conv" or users[0].idx != 0:
            return "not before a single Conv"
        conv = users[0].node
        where = f"not folded into the following Conv {conv.name!r}"
        geom, why = conv_geometry(conv)
        if geom is None:
            return f"{where}: {why}"
        if any(geom.pads):
            return f"{where}: the Conv pads {list(geom.pads)} are not all zero (border taps would miss the BN shift)"
        reason = _params_refusal(conv, bn) or _channels_refusal(
            bn, geom.group * conv.inputs[1].const_value.shape.numpy()[1]
        )
        if reason:
            return f"{where}: {reason}"
        try:
            s, t = _scale_shift(bn)
            w = conv.inputs[1].const_value.numpy()
            b = conv.inputs[2].const_value.numpy() if has_input(conv, 2) else None
            new_w, new_b = bnm.before_conv(w, b, s, t, geom.group)
        except bnm.FoldError as exc:
            return f"{where}: {exc}"
        old = [conv.inputs[1], conv.inputs[2] if has_input(conv, 2) else None, *bn.inputs[1:5]]
        _replace_params(graph, conv, new_w, new_b)
        conv.replace_input_with(0, bn.inputs[0])
        graph.remove(bn, safe=True)
        release(graph, old)
        self.log.rewrite(
            [bn.name, conv.name], "BatchNormalization+Conv (unpadded) -> Conv", weight_spread=bnm.spread(new_w)
        )
        return True


def _bn_refusal(bn: ir.Node) -> str | None:
    training = bn.attributes.get("training_mode")
    if training is not None and training.value != 0:
        return "BatchNormalization is in training mode"
    if any(o is not None and (o.uses() or o.is_graph_output()) for o in bn.outputs[1:]):
        return "BatchNormalization has its optional running-statistics outputs"
    return None


def _producer_refusal(node: ir.Node, bn: ir.Node) -> str | None:
    out = node.outputs[0]
    if out.is_graph_output():
        return "its output is also a graph output"
    if len(out.uses()) != 1:
        return f"its output has {len(out.uses())} consumers"
    reason = _params_refusal(node, bn)
    if reason:
        return reason
    w_shape = node.inputs[1].const_value.shape.numpy()
    if node.op_type == "Conv":
        channels = w_shape[0]
    elif node.op_type == "ConvTranspose":
        channels = w_shape[1] * int_attr(node, "group", 1)
    else:
        channels = w_shape[0] if int_attr(node, "transB", 0) else w_shape[1]
        if has_input(node, 2) and len(node.inputs[2].const_value.shape) > 2:
            return "the Gemm bias has rank > 2"
    return _channels_refusal(bn, channels)


def _params_refusal(node: ir.Node, bn: ir.Node) -> str | None:
    params = [node.inputs[1]] + ([node.inputs[2]] if has_input(node, 2) else []) + list(bn.inputs[1:5])
    for v in params:
        reason = is_param(v)
        if reason:
            return reason
        if v.const_value.dtype not in FLOAT_TYPES:
            return f"parameter {v.name!r} has dtype {v.const_value.dtype.name}, not float16/float32/float64"
    return None


def _channels_refusal(bn: ir.Node, channels: int) -> str | None:
    for v in bn.inputs[1:5]:
        if tuple(v.const_value.shape) != (channels,):
            return (
                f"BatchNormalization parameter {v.name!r} has shape {tuple(v.const_value.shape)}, "
                f"expected ({channels},)"
            )
    return None


def _scale_shift(bn: ir.Node):
    attr = bn.attributes.get("epsilon")
    eps = float(attr.value) if attr is not None else float(np.float32(1e-5))
    gamma, beta, mean, var = (v.const_value.numpy() for v in bn.inputs[1:5])
    return bnm.scale_shift(gamma, beta, mean, var, eps)


def _fold_math(node: ir.Node, s: np.ndarray, t: np.ndarray):
    w = node.inputs[1].const_value.numpy()
    b = node.inputs[2].const_value.numpy() if has_input(node, 2) else None
    if node.op_type == "Conv":
        return bnm.into_conv(w, b, s, t)
    if node.op_type == "ConvTranspose":
        return bnm.into_conv_transpose(w, b, s, t, int_attr(node, "group", 1))
    beta = node.attributes.get("beta")
    return bnm.into_gemm(w, b, float(beta.value) if beta is not None else 1.0, bool(int_attr(node, "transB", 0)), s, t)


def _replace_params(graph: ir.Graph, node: ir.Node, w: np.ndarray, b: np.ndarray) -> None:
    base = node.name or node.outputs[0].name
    node.replace_input_with(1, new_initializer(graph, f"{base}.folded_weight", w))
    if len(node.inputs) < 3:
        node.resize_inputs(3)
    node.replace_input_with(2, new_initializer(graph, f"{base}.folded_bias", b))


def _bypass(graph: ir.Graph, bn: ir.Node, replacement: ir.Value) -> None:
    """Remove ``bn``, its consumers reading ``replacement`` instead; a graph output keeps its name."""
    out = bn.outputs[0]
    if out.is_graph_output():
        for i, o in enumerate(graph.outputs):
            if o is out:
                graph.outputs[i] = replacement
        replacement.name, out.name = out.name, f"{out.name}.pre_fold"
    out.replace_all_uses_with(replacement)
    graph.remove(bn, safe=True)
