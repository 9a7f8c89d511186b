"""TensorRT INT8 calibration cache, written from deploycc's own activation ranges.

TensorRT's implicit INT8 (``--int8 --calib=FILE``, ``IInt8Calibrator::readCalibrationCache``) reads
a text file: one header line ``TRT-<version>-<calibrator>``, where ``<version>`` is
``NV_TENSORRT_VERSION`` = major*1000 + minor*100 + patch (8.5.2 -> ``8502``; NVIDIA/TensorRT #2036
shows ``TRT-8203-EntropyCalibration2`` for 8.2.3) and ``<calibrator>`` one of
``EntropyCalibration2``, ``EntropyCalibration``, ``MinMaxCalibration``, ``LegacyCalibration``;
then one line per tensor, ``<tensor name>: <scale>``, the scale being the float32 INT8 scale
(``max(|min|, |max|) / 127``; TensorRT INT8 is symmetric) as 8 hex digits of its big-endian
IEEE-754 bytes. Tensor names are the ONNX tensor names, which TensorRT's ONNX parser keeps.

With this file on the Jetson, the engine build skips calibration entirely: the scales are the
ones deploycc calibrated and verified here. Written by hand because no library writes it.
"""

from __future__ import annotations

import math
import re
import struct

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


def cache_from_ranges(
    model,
    ranges: dict[str, tuple[float, float]],
    version: str,
    calibrator: str = "EntropyCalibration2",
    equal_input_ops=(),
) -> str:
    """The cache for every activation tensor of ``model`` (graph inputs, node outputs) with a range."""
    return write_cache(scales_from_ranges(model, ranges, equal_input_ops), version, calibrator)


def scales_from_ranges(model, ranges: dict[str, tuple[float, float]], equal_input_ops=()) -> dict[str, float]:
    """TensorRT's symmetric scale ``max(|lo|, |hi|) / 127`` of every activation of ``model`` with a range.
    ``equal_input_ops``: element-wise op types whose INT8 inputs must share one scale on the device
    (a target's ``[legality.elementwise] int8_equal_input_ranges``); their inputs get the largest."""
    names: list[str] = [i.name for i in graph_inputs(model)]
    for node in model.graph.node:
        if node.op_type != "Constant":  # constants are weights to TensorRT, not activations
            names += [o for o in node.output if o]
    scales = {}
    for name in names:
        if name in ranges and name not in scales:
            lo, hi = ranges[name]
            scales[name] = max(abs(lo), abs(hi)) / 127.0
    _equalize_inputs(model, scales, set(equal_input_ops))
    return scales


def _equalize_inputs(model, scales: dict[str, float], ops: set[str]) -> None:
    """Give the activation inputs of every ``ops`` node one scale, the largest of them; repeated
    until nothing changes, since one tensor can feed several such nodes."""
    groups = [[i for i in n.input if i in scales] for n in model.graph.node if n.op_type in ops]
    groups = [g for g in groups if len(g) > 1]
    changed = True
    while changed:
        changed = False
        for group in groups:
            top = max(scales[i] for i in group)
            for name in group:
                if scales[name] != top:
                    scales[name], changed = top, True
