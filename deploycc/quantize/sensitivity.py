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

Where the target runs its float layers in FP16 (a TensorRT target with ``fp16 = true``: the kept
layers go to ``--layerPrecisions ...:fp16``, and every op INT8 does not cover runs in FP16 too),
each trial runs the Q/DQ model as the device does: Q/DQ in float32, everything else in float16
(``deploycc.targets.fp16_sim.fp16_model(keep_qdq=True)``). Measured in FP32 instead, keeping every
layer in float costs nothing, so the fit would always "meet" a budget the device misses: on the
published mac_small, FP16 alone flips 0.1-0.2 % of the pixels of synthetic street scenes and costs
about 1 agreement-mIoU point (docs/targets.md, "INT8 on the Xavier: what the quantization costs").
Where the target's element-wise ops read their INT8 inputs at one scale (the Xavier DLA), each
trial's Q/DQ model shares them too (``DeviceRules``), as the build's final Q/DQ model does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import onnx

from deploycc.core.accuracy import Agreement
from deploycc.quantize.qdq import QuantConfig, Ranges, quantize
from deploycc.quantize.shared_scales import share_input_scales
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


@dataclass(frozen=True)
class DeviceRules:
    """How the target runs a Q/DQ model, so that every trial measures that: the layers kept out of
    INT8 (and the ops INT8 does not cover) in FP16, and the element-wise ops whose INT8 inputs share
    one scale (the DLA's rule, ``deploycc.quantize.shared_scales``)."""

    fp16: bool = False
    shared_scale_ops: tuple[str, ...] = ()

    def qdq(self, model: onnx.ModelProto, ranges: Ranges, config: QuantConfig) -> onnx.ModelProto:
        q = quantize(model, ranges, config)
        return share_input_scales(q, self.shared_scale_ops)[0] if self.shared_scale_ops else q


def run_model(model: onnx.ModelProto, feeds: list[dict], threads: int = 0, fp16: bool = False) -> list[np.ndarray]:
    """``model`` on ORT, all optimizations (Q/DQ models run ORT's INT8 kernels). CPU-dependent: on
    x86 without VNNI with ORT's exact u8u8 kernels (``deploycc.targets.onnxruntime.int8_cpu``), so a sensitivity
    measures quantization, not the saturation of ORT's u8s8 kernels on that CPU. ``fp16``: every op
    but QuantizeLinear/DequantizeLinear in float16 (the float layers of a TensorRT INT8 + FP16 engine)."""
    import onnxruntime as ort

    if fp16:
        from deploycc.targets.fp16_sim import fp16_model

        model = fp16_model(model, keep_qdq=True)

    so = ort.SessionOptions()
    int8_cpu.apply(so)
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return [sess.run(None, f)[0] for f in feeds]


def output_drop(refs: list[np.ndarray], outs: list[np.ndarray]) -> dict:
    """Relative L2 error, agreement-mIoU drop (points) and pixel agreement (%) of ``outs`` against
    the FP32 ``refs`` (classification outputs: top-1 agreement)."""
    num = sum(float(np.sum((o.astype(np.float64) - r) ** 2)) for r, o in zip(refs, outs))
    den = sum(float(np.sum(r.astype(np.float64) ** 2)) for r in refs) or 1.0
    if refs[0].ndim == 4:
        agreement = Agreement(refs[0].shape[1])
        for r, o in zip(refs, outs):
            agreement.add(r.argmax(1), o.argmax(1))
        scores = agreement.scores()
        miou, pixels = scores["miou"] or 0.0, scores["pixel_agreement"] or 0.0
    else:
        miou = pixels = float(np.mean([np.mean(r.argmax(-1) == o.argmax(-1)) for r, o in zip(refs, outs)]))
    return {"rel_l2": (num / den) ** 0.5, "miou_drop": 100.0 * (1.0 - miou), "pixel_agreement": 100.0 * pixels}


def layer_sensitivity(
    model: onnx.ModelProto,
    ranges: Ranges,
    config: QuantConfig,
    feeds: list[dict],
    refs: list[np.ndarray],
    threads: int = 0,
    device: DeviceRules = DeviceRules(),
) -> list[dict]:
    """One row per quantized node (``LAYER_OPS``, not already excluded), most sensitive first,
    each measured as ``device`` runs it."""
    rows = []
    excluded = set(config.exclude)
    layers = [n for n in model.graph.node if n.op_type in LAYER_OPS and n.name and n.name not in excluded]
    for node in layers:
        others = tuple(n.name for n in layers if n.name != node.name) + tuple(excluded)
        q = device.qdq(model, ranges, replace(config, exclude=others))
        rows.append(
            {"node": node.name, "op": node.op_type, **output_drop(refs, run_model(q, feeds, threads, device.fp16))}
        )
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
    device: DeviceRules = DeviceRules(),
) -> dict:
    """The fewest most-sensitive layers to keep in float so the agreement-mIoU drop is <= ``budget``,
    each trial measured as ``device`` runs it."""

    def drop_with(k: int) -> dict:
        keep = tuple(r["node"] for r in ranking[:k])
        q = device.qdq(model, ranges, replace(config, exclude=tuple(config.exclude) + keep))
        return {"kept": list(keep), **output_drop(refs, run_model(q, feeds, threads, device.fp16))}

    best = drop_with(0)
    trials = [_trial(0, best)]
    if best["miou_drop"] <= budget:
        return {**best, "budget": budget, "met": True, "trials": trials}
    lo, hi = 0, len(ranking)  # drop(lo) > budget; drop(hi) <= budget once checked
    result = drop_with(hi)
    trials.append(_trial(hi, result))
    if result["miou_drop"] > budget:
        return {**result, "budget": budget, "met": False, "trials": trials}
    best_ok = result
    while hi - lo > 1:
        mid = (lo + hi) // 2
        result = drop_with(mid)
        trials.append(_trial(mid, result))
        if result["miou_drop"] <= budget:
            hi, best_ok = mid, result
        else:
            lo = mid
    return {**best_ok, "budget": budget, "met": True, "trials": trials}


def _trial(kept: int, result: dict) -> dict:
    return {"kept_layers": kept, "miou_drop": result["miou_drop"], "pixel_agreement": result["pixel_agreement"]}


def layer_precisions(nodes: list[str]) -> str:
    """The trtexec 8.5 arguments that keep ``nodes`` out of INT8."""
    if not nodes:
        return ""
    return "--precisionConstraints=obey --layerPrecisions=" + ",".join(f"{n}:fp16" for n in nodes)
