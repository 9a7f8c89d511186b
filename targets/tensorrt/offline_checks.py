"""Offline checks of what TensorRT will consume, done here before the bundle leaves the build machine.

TensorRT 8.5 on the Jetson reads the bundle's ``model.onnx`` and ``calib.cache``; nothing on the
build machine runs TensorRT, so each of these inputs is checked on its own (recorded in the
manifest as ``trt_offline_checks``, each passed / failed / not run):

* ``model_onnx``: the bundle's ``model.onnx`` (the optimized FP32 graph) against the FP32
  reference (the original model), both on ONNX Runtime with optimizations off, on the held-out
  inputs;
* ``calib_cache_ranges``: every scale in ``calib.cache`` is bit for bit the float32 scale the
  bundle's Q/DQ model (``model.qdq.onnx``) quantizes that tensor with, and every activation the
  Q/DQ model quantizes is in the cache (symmetric INT8: ``real = scale * q``, ``q`` in [-127, 127],
  the same arithmetic in TensorRT and in ONNX Runtime's symmetric INT8);
* ``calib_cache_simulation``: INT8 simulated from the cache: the Q/DQ model with every activation
  QuantizeLinear/DequantizeLinear scale replaced by the cache's (decoded from its hex, matched by
  tensor name as TensorRT matches them), run on ONNX Runtime and compared with the Q/DQ model
  itself. Identical scales make an identical graph, so the outputs must be identical: the
  tolerance is zero, and any difference means the cache encodes other scales than the Q/DQ model
  the build verified (docs/targets.md, "What the offline checks compare").

A failed ``model_onnx`` or ``calib_cache_simulation`` check carries ``layers``: its two models
compared tensor by tensor (``deploycc.core.layerwise``), naming the first layer that differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from deploycc.core.layerwise import compare_layers
from deploycc.core.numerics import Tolerance, compare_all, run_reference
from deploycc.core.verdict import FAILED, PASSED, not_run

from .calib_cache import activation_quantizers, parse_cache, qdq_activation_scales

# The simulation check is exact (same scales, same graph): its per-layer table names the first tensor
# that differs at all.
EXACT = Tolerance(atol_rel=0.0, rtol=0.0)


def offline_checks(bundle: Path, original: onnx.ModelProto, quant, feeds: list[dict], tol: Tolerance) -> dict:
    checks: dict = {"model_onnx": _model_onnx(bundle / "model.onnx", original, feeds, tol)}
    cache = bundle / "calib.cache"
    if quant is None or not cache.is_file():
        why = not_run("no calibration cache (not an INT8 implicit-calibration bundle)", "an INT8 TensorRT 8.5 target")
        checks.update(calib_cache_ranges=why, calib_cache_simulation=why)
        return checks
    _, scales = parse_cache(cache.read_text())
    model = onnx.load(str(bundle / "model.onnx"))
    qdq = onnx.load(str(bundle / "model.qdq.onnx"))
    checks["calib_cache_ranges"] = _ranges(scales, qdq_activation_scales(model, qdq))
    checks["calib_cache_simulation"] = _simulation(model, qdq, scales, feeds)
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
    """``scales`` (the cache's) against ``expected`` (the Q/DQ model's), tensor by tensor, bit for bit."""
    wrong = [f"{name}: in the cache, not quantized by the Q/DQ model" for name in scales if name not in expected]
    wrong += [f"{name}: quantized by the Q/DQ model, missing from the cache" for name in expected if name not in scales]
    wrong += [
        f"{name}: cache {scale:.9g}, Q/DQ model {expected[name]:.9g}"
        for name, scale in scales.items()
        if name in expected and np.float32(scale) != np.float32(expected[name])
    ]
    return {
        "status": FAILED if wrong else PASSED,
        "tensors": len(scales),
        "reference": "the activation scales of model.qdq.onnx",
        "message": "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else ""),
    }


def _simulation(fp32: onnx.ModelProto, qdq: onnx.ModelProto, scales: dict[str, float], feeds: list[dict]) -> dict:
    sim = onnx.ModelProto()
    sim.CopyFrom(qdq)
    dtypes = {t.name: numpy_helper.to_array(t).dtype for t in sim.graph.initializer}
    replaced = 0
    for name, node in activation_quantizers(fp32, sim):
        if name not in scales or node.input[1] not in dtypes:
            continue
        new = f"{node.input[1]}__calib_cache_{replaced}"
        sim.graph.initializer.append(
            numpy_helper.from_array(np.asarray(scales[name], dtype=dtypes[node.input[1]]), new)
        )
        for d in sim.graph.node:
            if d.op_type == "DequantizeLinear" and d.input[0] == node.output[0]:
                d.input[1] = new
        node.input[1] = new
        replaced += 1
    if replaced == 0:
        return not_run(
            "the Q/DQ model has no activation QuantizeLinear named like the cache's tensors",
            "a Q/DQ model made from the same ranges as the cache",
        )
    diffs = []
    for feeds_one in feeds:
        for ref, got in zip(run_reference(qdq, feeds_one), run_reference(sim, feeds_one), strict=True):
            diffs.append(float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)))) if ref.size else 0.0)
    worst = max(diffs)
    return {
        "status": PASSED if worst == 0.0 else FAILED,
        "quantizers_from_cache": replaced,
        "tolerance": "exact: the same scales make the same graph",
        "worst_max_abs": worst,
        "message": ""
        if worst == 0.0
        else f"INT8 simulated from calib.cache differs from the Q/DQ model (max abs {worst:.3g}, must be 0)",
    } | (
        {}
        if worst == 0.0
        else {"layers": compare_layers(qdq, sim, feeds[0], EXACT, "the Q/DQ model", "INT8 from calib.cache")}
    )
