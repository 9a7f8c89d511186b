"""fold-bn: fold an inference-mode BatchNormalization into the Conv that produces its input.

Math. BN(y) = gamma * (y - mean) / sqrt(var + eps) + beta. With s = gamma / sqrt(var + eps)
(one value per output channel) and Conv(x) = W * x + b, BN(Conv(x)) = W' * x + b' where
W'[o, ...] = W[o, ...] * s[o] and b' = (b - mean) * s + beta (b = 0 when the Conv has no bias).
Scaling axis 0 is exact for any ``group``: the weight layout is [Cout, Cin/group, k...] and output
channel o only ever uses W[o]. Computed in float64 and cast back to the weight's dtype.

Legal only when all of these hold (otherwise the pair is left untouched and the refusal is logged):
  * BN has ``training_mode`` 0 and one output (no running-statistics outputs);
  * the Conv output feeds only this BN and is not a graph output;
  * W, the Conv bias (if any) and the four BN parameters are constant initializers and none of
    them is also a graph input (a graph input can be overridden at run time);
  * all of them are float tensors (float16/32/64) and the BN parameters are 1-D of size Cout;
  * var + eps > 0 for every channel and every folded value is finite.
A missing ``epsilon`` means 1e-5. Folded tensors always get new initializers, never an in-place
overwrite, so a weight shared with another node is left intact.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from deploycc.passmanager import DeployPass

_FLOAT = {ir.DataType.FLOAT, ir.DataType.DOUBLE, ir.DataType.FLOAT16}


class FoldBatchNorm(DeployPass):
    name = "fold-bn"
    summary = "fold inference BatchNormalization into the preceding Conv (weights and bias rescaled)"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        modified = False
        for bn in [n for n in model.graph if n.op_type == "BatchNormalization" and n.domain == ""]:
            modified |= self._fold(model.graph, bn)
        return ir.passes.PassResult(model, modified=modified)

    def _fold(self, graph: ir.Graph, bn: ir.Node) -> bool:
        conv = bn.inputs[0].producer() if bn.inputs[0] is not None else None
        if conv is None or conv.op_type != "Conv" or conv.domain != "":
            return False
        reason = _refusal(conv, bn)
        if reason:
            self.log.refuse(bn.name, reason, producer=conv.name)
            return False
        w = conv.inputs[1].const_value.numpy()
        bias = conv.inputs[2].const_value.numpy() if _has(conv, 2) else np.zeros(w.shape[0], w.dtype)
        gamma, beta, mean, var = (v.const_value.numpy().astype(np.float64) for v in bn.inputs[1:5])
        eps = _epsilon(bn)
        denom = var + eps
        if np.any(denom <= 0):
            self.log.refuse(bn.name, f"var + epsilon <= 0 in {int(np.sum(denom <= 0))} channel(s)")
            return False
        scale = gamma / np.sqrt(denom)
        new_w = w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))
        new_b = (bias.astype(np.float64) - mean) * scale + beta
        if not (np.all(np.isfinite(new_w)) and np.all(np.isfinite(new_b))):
            self.log.refuse(bn.name, "folded weights or bias are not finite")
            return False
        self._rewire(graph, conv, bn, new_w.astype(w.dtype), new_b.astype(w.dtype))
        spread = float(np.max(np.abs(new_w)) / max(np.median(np.abs(new_w)), 1e-30))
        self.log.rewrite([conv.name, bn.name], "Conv+BatchNormalization -> Conv", weight_spread=spread)
        return True

    def _rewire(self, graph: ir.Graph, conv: ir.Node, bn: ir.Node, w, b) -> None:
        base = conv.name or conv.outputs[0].name
        w_val = _new_initializer(graph, f"{base}.folded_weight", w)
        b_val = _new_initializer(graph, f"{base}.folded_bias", b)
        conv.replace_input_with(1, w_val)
        if len(conv.inputs) < 3:
            conv.resize_inputs(3)
        conv.replace_input_with(2, b_val)
        out = bn.outputs[0]
        conv_out = conv.outputs[0]
        if out.is_graph_output():
            idx = [i for i, o in enumerate(graph.outputs) if o is out]
            for i in idx:
                graph.outputs[i] = conv_out
            conv_out.name, out.name = out.name, f"{out.name}.pre_fold"
        out.replace_all_uses_with(conv_out)
        graph.remove(bn, safe=True)


def _refusal(conv: ir.Node, bn: ir.Node) -> str | None:
    training = bn.attributes.get("training_mode")
    if training is not None and training.value != 0:
        return "BatchNormalization is in training mode"
    if len([o for o in bn.outputs if o is not None and (o.uses() or o.is_graph_output())]) > 1:
        return "BatchNormalization has its optional running-statistics outputs"
    out = conv.outputs[0]
    if out.is_graph_output():
        return "the Conv output is also a graph output"
    if len(out.uses()) != 1:
        return f"the Conv output has {len(out.uses())} consumers"
    params = [conv.inputs[1]] + ([conv.inputs[2]] if _has(conv, 2) else []) + list(bn.inputs[1:5])
    for v in params:
        if v is None or v.const_value is None:
            return f"parameter {getattr(v, 'name', None)!r} is not a constant initializer"
        if v.is_graph_input():
            return f"initializer {v.name!r} is also a graph input (it can be overridden at run time)"
        if v.const_value.dtype not in _FLOAT:
            return f"parameter {v.name!r} has dtype {v.const_value.dtype}, not float"
    cout = conv.inputs[1].const_value.shape[0]
    for v in bn.inputs[1:5]:
        if tuple(v.const_value.shape) != (cout,):
            return f"BatchNormalization parameter {v.name!r} has shape {tuple(v.const_value.shape)}, expected ({cout},)"
    return None


def _has(node: ir.Node, index: int) -> bool:
    return len(node.inputs) > index and node.inputs[index] is not None


def _epsilon(bn: ir.Node) -> float:
    attr = bn.attributes.get("epsilon")
    return float(attr.value) if attr is not None else 1e-5


def _new_initializer(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    taken = set(graph.initializers)
    unique, i = name, 1
    while unique in taken:
        unique, i = f"{name}.{i}", i + 1
    value = ir.Value(name=unique, shape=ir.Shape(array.shape), type=ir.TensorType(ir.DataType.from_numpy(array.dtype)),
                     const_value=ir.tensor(array, name=unique))
    graph.register_initializer(value)
    return value
