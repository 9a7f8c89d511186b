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

import onnx


def fp16_model(model: onnx.ModelProto) -> onnx.ModelProto:
    import warnings

    from onnxconverter_common import float16

    with warnings.catch_warnings():  # it warns for every weight below float16's range (they become 0)
        warnings.simplefilter("ignore", UserWarning)
        return float16.convert_float_to_float16(model, keep_io_types=True)


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
