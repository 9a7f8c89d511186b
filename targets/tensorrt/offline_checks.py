"""Offline checks of what TensorRT will consume, done here before the bundle leaves the build machine.

TensorRT 8.5 on the Jetson reads the bundle's ``model.onnx`` and ``calib.cache``; nothing on the
build machine runs TensorRT, so each of these inputs is checked on its own (recorded in the
manifest as ``trt_offline_checks``, each passed / failed / not run):

* ``model_onnx``: the bundle's ``model.onnx`` (the optimized FP32 graph) against the FP32
  reference (the original model), both on ONNX Runtime with optimizations off, on the held-out
  inputs;
* ``calib_cache_ranges``: every scale in ``calib.cache`` is exactly the scale of the Q/DQ model's
  range for that tensor (``max(|lo|, |hi|) / 127``, as TensorRT's symmetric INT8 reads it; on a
  target with ``int8_equal_input_ranges`` the inputs of its element-wise ops share the largest of
  their scales, as the device requires) and no activation with a range is missing from it;
* ``calib_cache_simulation``: INT8 simulated from the cache's own scales: the Q/DQ model with
  every activation QuantizeLinear/DequantizeLinear scale replaced by the cache's (decoded from its
  hex), run on ONNX Runtime and compared with the Q/DQ model itself, with the target's INT8
  tolerance. The two are not bit-identical by design: ONNX Runtime's symmetric INT8 scale is
  ``2 max|x| / 255`` and TensorRT's ``max|x| / 127`` (0.4 % apart); the worst difference is
  recorded. A cache that encodes other ranges than the Q/DQ model fails it.

A failed ``model_onnx`` or ``calib_cache_simulation`` check carries ``layers``: its two models
compared tensor by tensor (``deploycc.core.layerwise``), naming the first layer out of tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from deploycc.core.layerwise import compare_layers
from deploycc.core.numerics import Tolerance, compare_all, run_reference
from deploycc.core.verdict import FAILED, PASSED, not_run

from .calib_cache import parse_cache, scales_from_ranges


def offline_checks(
    bundle: Path, original: onnx.ModelProto, quant, feeds: list[dict], tol: Tolerance, equal_input_ops=()
) -> dict:
    checks: dict = {"model_onnx": _model_onnx(bundle / "model.onnx", original, feeds, tol)}
    cache = bundle / "calib.cache"
    if quant is None or not cache.is_file():
        why = not_run("no calibration cache (not an INT8 implicit-calibration bundle)", "an INT8 TensorRT 8.5 target")
        checks.update(calib_cache_ranges=why, calib_cache_simulation=why)
        return checks
    _, scales = parse_cache(cache.read_text())
    model = onnx.load(str(bundle / "model.onnx"))
    checks["calib_cache_ranges"] = _ranges(scales, scales_from_ranges(model, quant.ranges.values, equal_input_ops))
    if equal_input_ops:  # the cache differs from the Q/DQ model on purpose: comparing them means nothing
        checks["calib_cache_simulation"] = not_run(
            f"the target shares one INT8 scale across the inputs of {', '.join(equal_input_ops)} "
            "(int8_equal_input_ranges), which its Q/DQ model does not",
            "a Q/DQ model with the shared scales",
        )
    else:
        checks["calib_cache_simulation"] = _simulation(quant.qdq, scales, feeds, tol)
    return checks


def failures(checks: dict) -> list[str]:
    return [
        f"{name}: {c.get('message', '')}".rstrip(": ")
        for name, c in checks.items()
        if isinstance(c, dict) and c.get("status") == FAILED
    ]


def _model_onnx(path: Path, original: onnx.ModelProto, feeds: list[dict], tol: Tolerance) -> dict:
    model = onnx.load(str(path))
    names = [o.name for o in original.graph.output]
    stats = [s for f in feeds for s in compare_all(names, run_reference(original, f), run_reference(model, f), tol)]
    ok = all(s.ok for s in stats)
    return {
        "status": PASSED if ok else FAILED,
        "subject": "model.onnx (what TensorRT parses)",
        "reference": "the original FP32 model",
        "worst_max_abs": max(s.max_abs for s in stats),
        "message": "" if ok else "model.onnx does not compute the original model within the target's tolerance",
    } | (
        {}
        if ok
        else {"layers": compare_layers(original, model, feeds[0], tol, "the original FP32 model", "model.onnx")}
    )


def _ranges(scales: dict[str, float], expected: dict[str, float]) -> dict:
    wrong = [f"{name}: in the cache, without a range" for name in scales if name not in expected]
    wrong += [f"{name}: has a range, missing from the cache" for name in expected if name not in scales]
    wrong += [
        f"{name}: cache {scale:.9g}, range {expected[name]:.9g}"
        for name, scale in scales.items()
        if name in expected and np.float32(scale) != np.float32(expected[name])
    ]
    return {
        "status": FAILED if wrong else PASSED,
        "tensors": len(scales),
        "message": "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else ""),
    }


def _simulation(qdq: onnx.ModelProto, scales: dict[str, float], feeds: list[dict], tol: Tolerance) -> dict:
    sim = onnx.ModelProto()
    sim.CopyFrom(qdq)
    inits = {t.name: t for t in sim.graph.initializer}
    replaced = 0
    for node in sim.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in scales or node.input[1] not in inits:
            continue
        new = f"{node.input[1]}__calib_cache"
        value = np.asarray(scales[node.input[0]], dtype=numpy_helper.to_array(inits[node.input[1]]).dtype)
        sim.graph.initializer.append(numpy_helper.from_array(value.reshape(inits[node.input[1]].dims), new))
        pair = [d for d in sim.graph.node if d.op_type == "DequantizeLinear" and d.input[0] == node.output[0]]
        node.input[1] = new
        for d in pair:
            d.input[1] = new
        replaced += 1
    if replaced == 0:
        return not_run(
            "the Q/DQ model has no activation QuantizeLinear named like the cache's tensors",
            "a Q/DQ model made from the same ranges as the cache",
        )
    names = [o.name for o in qdq.graph.output]
    stats = [s for f in feeds for s in compare_all(names, run_reference(qdq, f), run_reference(sim, f), tol)]
    ok = all(s.ok for s in stats)
    return {
        "status": PASSED if ok else FAILED,
        "quantizers_from_cache": replaced,
        "worst_max_abs": max(s.max_abs for s in stats),
        "message": "" if ok else "INT8 simulated from calib.cache differs from the Q/DQ model",
    } | ({} if ok else {"layers": compare_layers(qdq, sim, feeds[0], tol, "the Q/DQ model", "INT8 from calib.cache")})
