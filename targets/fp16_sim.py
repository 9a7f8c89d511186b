"""An FP16 simulation of a device-only FP16 target's graph, run on ONNX Runtime here.

The phone's NPU (NNAPI with ``NNAPI_FLAG_USE_FP16``) and TensorRT's FP16 engines compute in half
precision; checking their graph as FP32 would let an FP16 overflow or a precision-sensitive layer
pass unseen. So their proxies run the graph converted to float16 (``onnxconverter_common.float16``:
weights and activations in float16, the model's inputs and outputs kept float32 with casts, so
the usual feeds and comparisons apply), on ONNX Runtime's CPU kernels, which have FP16 Conv. It
is a simulation of FP16 storage and arithmetic, not of the device's own kernels (their
accumulation order and precision may differ): the target's ``[verify]`` tolerance is an FP16 one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx


def fp16_model(model: onnx.ModelProto, keep_qdq: bool = False) -> onnx.ModelProto:
    """The float16 conversion of ``model``, with the shape arguments of Resize/Upsample kept float32.

    A resize's ``scales`` (and ``roi``) decide its output size (``floor(in * scale)``), and a device
    computes that size from the declared float32 value: 98/3 = 32.666668 gives 3 -> 98, while the
    float16 32.66 gives 97 and the decoder's shapes no longer meet. onnxconverter-common already
    keeps Resize itself in float32 (its default block list) but still casts the constant feeding
    it to float16 and back (it inserts the casts before it looks for a blocked op's initializers),
    so each resize is pointed back at its float32 value after the conversion.

    ``keep_qdq``: a Q/DQ model as TensorRT runs it with INT8 and FP16 enabled: every
    QuantizeLinear/DequantizeLinear stays float32 (the INT8 layers keep their exact scales, and the
    float between a DequantizeLinear and its layer is rounded to float16), every other op (the
    layers kept out of INT8, the ops INT8 does not cover) computes in float16."""
    import warnings

    from onnxconverter_common import float16

    model, args = _resize_args(model)
    with warnings.catch_warnings():  # it warns for every weight below float16's range (they become 0)
        warnings.simplefilter("ignore", UserWarning)
        blocked = list(float16.DEFAULT_OP_BLOCK_LIST) + (["QuantizeLinear", "DequantizeLinear"] if keep_qdq else [])
        half = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
    return _restore_resize_args(half, args)


def _resize_args(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """A copy of ``model`` with every Resize/Upsample named, and (node name, input index) -> the
    float32 value of each constant roi/scales input (a Constant node's or an initializer's)."""
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    values = {t.name: numpy_helper.to_array(t) for t in copy.graph.initializer}
    for node in copy.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    args = {}
    for index, node in enumerate(copy.graph.node):
        if node.op_type in _RESIZES:
            node.name = node.name or f"deploycc_resize_{index}"
            for i, name in enumerate(node.input):
                if i > 0 and name in values and values[name].dtype == np.float32:
                    args[(node.name, i)] = values[name]
    return copy, args


def _restore_resize_args(half: onnx.ModelProto, args: dict) -> onnx.ModelProto:
    """Point each resize of the converted model back at its float32 roi/scales (the converter
    casts them to float16 and back, whatever its block list says) and drop the casts left unread."""
    from onnx import numpy_helper

    for node in half.graph.node:
        for i in range(len(node.input)):
            if (node.name, i) in args:
                name = f"{node.name}__float32_arg{i}"
                half.graph.initializer.append(numpy_helper.from_array(args[(node.name, i)], name))
                node.input[i] = name
    read = {i for n in half.graph.node for i in n.input} | {o.name for o in half.graph.output}
    for node in [n for n in half.graph.node if n.op_type == "Cast" and not set(n.output) & read]:
        half.graph.node.remove(node)
    read = {i for n in half.graph.node for i in n.input}
    for tensor in [t for t in half.graph.initializer if t.name not in read]:
        half.graph.initializer.remove(tensor)
    return half


_RESIZES = ("Resize", "Upsample")


def fp16_session(path: Path, threads: int = 0):
    """An ORT session of the float16 conversion of the ONNX model at ``path``."""
    from .backend import host_session

    with tempfile.TemporaryDirectory(prefix="deploycc-fp16-") as scratch:
        half = Path(scratch) / "model.fp16.onnx"
        onnx.save(fp16_model(onnx.load(str(path))), str(half))
        return host_session(half, threads)


SUBJECT = (
    "{name} converted to float16 (onnxconverter-common, inputs and outputs kept float32) on ONNX "
    "Runtime CPU: an FP16 simulation of {device}"
)


def fp16_proxy(path: Path, subject: str, threads: int = 0):
    """A Proxy that runs the float16 conversion of ``path``, carrying the converted model (so that a
    failed check can compare it with the original layer by layer)."""
    from .backend import Proxy, host_session

    half_model = fp16_model(onnx.load(str(path)))
    with tempfile.TemporaryDirectory(prefix="deploycc-fp16-") as scratch:
        half = Path(scratch) / "model.fp16.onnx"
        onnx.save(half_model, str(half))
        return Proxy(host_session(half, threads), subject, half_model)
