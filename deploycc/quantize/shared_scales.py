"""One INT8 scale for all activation inputs of an element-wise op, in the Q/DQ model itself.

The Xavier DLA runs an element-wise layer (sum, product, max, min, subtraction) in INT8 only when
its inputs have equal dynamic ranges (TensorRT 8.5, DLA layer restrictions); a target says so with
``[legality.elementwise] int8_equal_input_ranges = true``. Each such group of tensors gets the
largest of their scales, here, in the Q/DQ model, so that the model the build verifies (and the
calibration cache written from it) computes what the device computes. A tensor feeding several
such ops joins their groups, so the sharing is repeated until nothing changes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def share_input_scales(qdq: onnx.ModelProto, op_types) -> tuple[onnx.ModelProto, int]:
    """A copy of ``qdq`` whose ``op_types`` nodes read their activation inputs at one scale, and the
    number of tensors whose scale grew."""
    model = onnx.ModelProto()
    model.CopyFrom(qdq)
    values = {t.name: t for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    scale = {}  # QuantizeLinear output -> its current scale (activations with a scalar scale only)
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in values and node.input[1] in values:
            value = numpy_helper.to_array(values[node.input[1]])
            if value.size == 1:
                scale[node.output[0]] = value
    groups = []
    for node in model.graph.node:
        if node.op_type in op_types:
            found = [_quantized_by(producer, name) for name in node.input]
            group = sorted({q for q in found if q is not None and q in scale})
            if len(group) > 1:
                groups.append(group)
    grown: set[str] = set()
    changed = True
    while changed:
        changed = False
        for group in groups:
            top = max(scale[q] for q in group)
            for q in group:
                if scale[q] != top:
                    scale[q], changed = top, True
                    grown.add(q)
    for q in sorted(grown):
        _set_scale(model, producer[q], scale[q])
    return model, len(grown)


def _quantized_by(producer: dict, name: str) -> str | None:
    """The QuantizeLinear output behind ``name`` when ``name`` is a DequantizeLinear's output."""
    dq = producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producer.get(dq.input[0])
    return q.output[0] if q is not None and q.op_type == "QuantizeLinear" else None


def _set_scale(model: onnx.ModelProto, q: onnx.NodeProto, value: np.ndarray) -> None:
    """Give ``q`` and the DequantizeLinear nodes reading it a scale of their own (the old one may be
    shared with other tensors, which keep it)."""
    name = f"{q.output[0]}__shared_scale"
    model.graph.initializer.append(numpy_helper.from_array(np.asarray(value).reshape(value.shape), name))
    q.input[1] = name
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] == q.output[0]:
            node.input[1] = name
