"""TensorRT INT8 calibration cache, written from deploycc's own activation ranges.

TensorRT's implicit INT8 (``--int8 --calib=FILE``, ``IInt8Calibrator::readCalibrationCache``) reads
a text file: one header line ``TRT-<version>-<calibrator>``, where ``<version>`` is
``NV_TENSORRT_VERSION`` = major*1000 + minor*100 + patch (8.5.2 -> ``8502``; NVIDIA/TensorRT #2036
shows ``TRT-8203-EntropyCalibration2`` for 8.2.3) and ``<calibrator>`` one of
``EntropyCalibration2``, ``EntropyCalibration``, ``MinMaxCalibration``, ``LegacyCalibration``;
then one line per tensor, ``<tensor name>: <scale>``, the scale being the float32 INT8 scale
(symmetric: ``real = scale * q``, ``q`` in [-127, 127]) as 8 hex digits of its big-endian
IEEE-754 bytes. Tensor names are the ONNX tensor names, which TensorRT's ONNX parser keeps.

deploycc writes the scales of its Q/DQ model (``model.qdq.onnx``, the model the build verifies),
bit for bit, and only for the tensors that model quantizes: a tensor without a scale makes
TensorRT run the layers that read or write it in FP16/FP32, as the Q/DQ model runs them in float
(NVIDIA's qdq-translator makes the same translation). With this file on the Jetson, the engine
build skips calibration entirely. Written by hand because no library writes it.
"""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import onnx

from deploycc.core.errors import UserError
from deploycc.core.loader import graph_inputs

CALIBRATORS = ("EntropyCalibration2", "EntropyCalibration", "MinMaxCalibration", "LegacyCalibration")
_HEADER = re.compile(r"^TRT-(\d+)-(\w+)$")
_LINE = re.compile(r"^(.+): ([0-9a-f]{8})$")


def version_code(version: str) -> int:
    """``"8.5.2"`` -> 8502 (NV_TENSORRT_VERSION)."""
    try:
        parts = [int(p) for p in version.split(".")] + [0, 0]
    except ValueError:
        raise UserError(f"tensorrt.version {version!r} is not like 8.5.2") from None
    major, minor, patch = parts[:3]
    return major * 1000 + minor * 100 + patch


def scale_hex(scale: float) -> str:
    return struct.pack(">f", scale).hex()


def hex_scale(text: str) -> float:
    return struct.unpack(">f", bytes.fromhex(text))[0]


def write_cache(scales: dict[str, float], version: str, calibrator: str = "EntropyCalibration2") -> str:
    """The cache text for ``scales`` (tensor name -> INT8 scale), in the given order."""
    if calibrator not in CALIBRATORS:
        raise UserError(f"TensorRT calibrator {calibrator!r}: one of {', '.join(CALIBRATORS)}")
    lines = [f"TRT-{version_code(version)}-{calibrator}"]
    for name, scale in scales.items():
        if "\n" in name or not math.isfinite(scale) or scale < 0:
            raise UserError(f"tensor {name!r}: scale {scale} cannot go into a TensorRT calibration cache")
        # A zero range (a tensor that is constant 0 on the calibration set) still needs a valid
        # scale: TensorRT divides by it. The smallest normal float keeps the tensor exactly zero.
        lines.append(f"{name}: {scale_hex(max(scale, 1.1754944e-38))}")
    return "\n".join(lines) + "\n"


def parse_cache(text: str) -> tuple[dict, dict[str, float]]:
    """(``{"version": 8502, "calibrator": ...}``, tensor name -> scale) of a cache file's text."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = _HEADER.match(lines[0]) if lines else None
    if not header:
        raise UserError("not a TensorRT calibration cache: the first line is not TRT-<version>-<calibrator>")
    version, calibrator = header.groups()
    scales = {}
    for number, line in enumerate(lines[1:], start=2):
        m = _LINE.match(line)
        if not m:
            raise UserError(f"TensorRT calibration cache line {number}: {line!r} is not '<tensor>: <8 hex digits>'")
        scales[m.group(1)] = hex_scale(m.group(2))
    return {"version": int(version), "calibrator": calibrator}, scales


def cache_from_qdq(fp32, qdq, version: str, calibrator: str = "EntropyCalibration2") -> str:
    """The cache of the Q/DQ model ``qdq``: the scale of every activation it quantizes, under the
    name the tensor has in ``fp32`` (the graph TensorRT parses)."""
    return write_cache(qdq_activation_scales(fp32, qdq), version, calibrator)


def qdq_activation_scales(fp32, qdq) -> dict[str, float]:
    """``fp32`` tensor name -> the INT8 scale the Q/DQ model quantizes it with, in ``fp32``'s graph
    order (inputs, then node outputs). The cache is made from the Q/DQ model, not from the
    calibration ranges, because ONNX Runtime's quantizer moves ranges before it writes scales: the
    input of a Relu or Clip takes the output's range, and the output of an op it quantizes with its
    input's parameters (AveragePool, MaxPool, Resize, Reshape, Transpose ...) takes the input's scale.
    Refuses an activation with a non-zero zero point or more than one scale: TensorRT's INT8
    activations are symmetric and per tensor."""
    found = {name: _scale_of(q, qdq, name) for name, q in activation_quantizers(fp32, qdq)}
    order = [i.name for i in graph_inputs(fp32)] + [
        o for n in fp32.graph.node if n.op_type != "Constant" for o in n.output
    ]
    return {name: found[name] for name in order if name in found}


def activation_quantizers(fp32, qdq) -> list[tuple[str, onnx.NodeProto]]:
    """(``fp32`` tensor name, QuantizeLinear node) for every activation the Q/DQ model quantizes.
    ONNX Runtime renames a graph output it quantizes (the producer writes ``<name>_QuantizeLinear_Input``
    and the DequantizeLinear writes ``<name>``), so such a tensor is found by its DequantizeLinear."""
    constants = {t.name for t in qdq.graph.initializer}
    constants |= {o for n in qdq.graph.node if n.op_type == "Constant" for o in n.output}
    names = {i.name for i in fp32.graph.input} | {o for n in fp32.graph.node for o in n.output}
    dequantizers: dict[str, list[onnx.NodeProto]] = {}
    for node in qdq.graph.node:
        if node.op_type == "DequantizeLinear":
            dequantizers.setdefault(node.input[0], []).append(node)
    out = []
    for node in qdq.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in constants:
            continue
        name = node.input[0]
        if name not in names:
            name = next((d.output[0] for d in dequantizers.get(node.output[0], []) if d.output[0] in names), None)
        if name is None:
            raise UserError(f"the Q/DQ model quantizes tensor {node.input[0]!r}, which the FP32 graph does not have")
        out.append((name, node))
    return out


def _scale_of(q, qdq, name: str) -> float:
    from onnx import numpy_helper

    values = {t.name: t for t in qdq.graph.initializer}
    scale = numpy_helper.to_array(values[q.input[1]]) if q.input[1] in values else None
    zero = numpy_helper.to_array(values[q.input[2]]) if len(q.input) > 2 and q.input[2] in values else 0
    if scale is None or scale.size != 1:
        raise UserError(
            f"tensor {name!r}: the Q/DQ model's activation scale is not one constant (TensorRT: per tensor)"
        )
    if int(np.asarray(zero).ravel()[0]) != 0:
        raise UserError(
            f"tensor {name!r}: the Q/DQ model quantizes it with zero point {int(np.asarray(zero).ravel()[0])}; "
            'TensorRT\'s INT8 is symmetric (set [quantize] symmetric = true and activation_type = "int8")'
        )
    return float(scale.ravel()[0])
