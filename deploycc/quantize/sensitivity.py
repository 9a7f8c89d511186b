"""Per-layer INT8 sensitivity and accuracy-budgeted mixed precision.

Sensitivity of a layer = what quantizing *only that layer* does to the output, on held-out
inputs: the relative L2 error of the logits and the **agreement-mIoU drop**, i.e. 100 x (1 - mIoU
of the INT8 argmax taking the FP32 argmax as ground truth), in mIoU points (classification
outputs: the top-1 disagreement in percent). Labelled data is not needed; it measures what
quantization changes, which is what the budget is about.

``--max-miou-drop X`` (``fit_budget``): if the fully quantized model loses more than X points,
the most sensitive layers are kept in higher precision, as few as possible: the number kept is
found by bisection over the sensitivity ranking (the drop falls, near enough monotonically, as
more of the worst layers stay in float). The result is a list of Q/DQ exclusions, and the same
layers as a TensorRT 8.5 ``--layerPrecisions`` string (``name:fp16,...``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from deploycc.core.accuracy import Agreement
from deploycc.quantize.qdq import QuantConfig, Ranges, quantize
from deploycc.targets.onnxruntime import int8_cpu

# Every op ORT gives a Q/DQ pair of its own (activations like Relu fold into their producer):
# on mac_small the residual Adds alone cost 18 points with every conv kept in float.
LAYER_OPS = (
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Concat",
    "AveragePool",
    "GlobalAveragePool",
    "MaxPool",
    "Resize",
    "Sigmoid",
    "Softmax",
    "ReduceMean",
)


def run_model(model: onnx.ModelProto, feeds: list[dict], threads: int = 0) -> list[np.ndarray]:
    """``model`` on ORT, all optimizations (Q/DQ models run ORT's INT8 kernels). CPU-dependent: on
    x86 without VNNI with ORT's exact u8u8 kernels (``deploycc.targets.onnxruntime.int8_cpu``), so a sensitivity
    measures quantization, not the saturation of ORT's u8s8 kernels on that CPU."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    int8_cpu.apply(so)
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return [sess.run(None, f)[0] for f in feeds]


def output_drop(refs: list[np.ndarray], outs: list[np.ndarray]) -> dict:
    """Relative L2 error and agreement-mIoU drop (points) of ``outs`` against the FP32 ``refs``."""
    num = sum(float(np.sum((o.astype(np.float64) - r) ** 2)) for r, o in zip(refs, outs))
    den = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in refs) or 1.0
    if refs[0].ndim == 4:
        agreement = Agreement(refs[0].shape[1])
        for r, o in zip(refs, outs):
            agreement.add(r.argmax(1), o.argmax(1))
        miou = agreement.scores()["miou"] or 0.0
    else:
        miou = float(np.mean([np.mean(r.argmax(-1) == o.argmax(-1)) for r, o in zip(refs, outs)]))
    return {"rel_l2": (num / den) ** 0.5, "miou_drop": 100.0 * (1.0 - miou)}


def layer_sensitivity(
    model: onnx.ModelProto,
    ranges: Ranges,
    config: QuantConfig,
    feeds: list[dict],
    refs: list[np.ndarray],
    threads: int = 0,
) -> list[dict]:
    """One row per quantized node (``LAYER_OPS``, not already excluded), most sensitive first."""
    rows = []
    excluded = set(config.exclude)
    layers = [n for n in model.graph.node if n.op_type in LAYER_OPS and n.name and n.name not in excluded]
    for node in layers:
        others = tuple(n.name for n in layers if n.name != node.name) + tuple(excluded)
        q = quantize(model, ranges, replace(config, exclude=others))
        rows.append({"node": node.name, "op": node.op_type, **output_drop(refs, run_model(q, feeds, threads))})
    return sorted(rows, key=lambda r: (r["miou_drop"], r["rel_l2"]), reverse=True)


def fit_budget(
    model: onnx.ModelProto,
    ranges: Ranges,
    config: QuantConfig,
    feeds: list[dict],
    refs: list[np.ndarray],
    ranking: list[dict],
    budget: float,
    threads: int = 0,
) -> dict:
    """The fewest most-sensitive layers to keep in float so the agreement-mIoU drop is <= ``budget``."""

    def drop_with(k: int) -> dict:
        keep = tuple(r["node"] for r in ranking[:k])
        q = quantize(model, ranges, replace(config, exclude=tuple(config.exclude) + keep))
        return {"kept": list(keep), **output_drop(refs, run_model(q, feeds, threads))}

    best = drop_with(0)
    trials = [{"kept_layers": 0, "miou_drop": best["miou_drop"]}]
    if best["miou_drop"] <= budget:
        return {**best, "budget": budget, "met": True, "trials": trials}
    lo, hi = 0, len(ranking)  # drop(lo) > budget; drop(hi) <= budget once checked
    result = drop_with(hi)
    trials.append({"kept_layers": hi, "miou_drop": result["miou_drop"]})
    if result["miou_drop"] > budget:
        return {**result, "budget": budget, "met": False, "trials": trials}
    best_ok = result
    while hi - lo > 1:
        mid = (lo + hi) // 2
        result = drop_with(mid)
        trials.append({"kept_layers": mid, "miou_drop": result["miou_drop"]})
        if result["miou_drop"] <= budget:
            hi, best_ok = mid, result
        else:
            lo = mid
    return {**best_ok, "budget": budget, "met": True, "trials": trials}


def layer_precisions(nodes: list[str]) -> str:
    """The trtexec 8.5 arguments that keep ``nodes`` out of INT8."""
    if not nodes:
        return ""
    return "--precisionConstraints=obey --layerPrecisions=" + ",".join(f"{n}:fp16" for n in nodes)
