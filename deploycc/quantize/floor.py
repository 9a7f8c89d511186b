"""What an INT8 model costs against its FP32 model, and the Q/DQ models the build's floor compares
it with (ranges rescaled).

The check against the artifact's own Q/DQ model cannot see bad ranges: a Q/DQ model made from
them computes the same damage. A figure against FP32 alone cannot either, since what INT8 costs
honestly differs from net to net more than what a distortion costs (bench/bench_floor.py,
docs/targets.md "The INT8 floor"). So the floor also asks the ranges themselves: the same
Q/DQ model with every range halved and doubled is run on the held-out scenes, and if either
agrees with FP32 by more mIoU points than the ranges in use, the ranges are not what calibration
gives: cached ranges that differ from a calibration made now are refused (a fresh calibration
is what calibration gives, and is never refused by the probe).
"""

from __future__ import annotations

import copy

import numpy as np

from deploycc.core.numerics import Tolerance, compare_all
from deploycc.quantize.qdq import QuantResult, Ranges, fresh_ranges, quantize, ranges_of
from deploycc.quantize.sensitivity import output_drop
from deploycc.quantize.shared_scales import share_input_scales

PROBE_FACTORS = (0.5, 2.0)


def fp32_figures(refs: list[list[np.ndarray]], outs: list[list[np.ndarray]]) -> dict:
    """Worst cosine and argmax agreement over every output and input, and the agreement-mIoU drop
    (points) of the first output, of ``outs`` against the FP32 ``refs`` (one list of outputs per input)."""
    names = [str(i) for i in range(len(refs[0]))]
    loose = Tolerance(min_argmax_agreement=1e-9)  # only the figures are read
    stats = [s for r, o in zip(refs, outs) for s in compare_all(names, r, o, loose)]
    return {
        "cosine_min": min(s.cosine for s in stats),
        # A non-finite output has no agreement (None): min() over None and a float would raise.
        "argmax_agreement_min": min((a for s in stats if (a := s.argmax_agreement) is not None), default=None),
        "miou_drop": output_drop([r[0] for r in refs], [o[0] for o in outs])["miou_drop"],
    }


def rescaled_ranges(ranges: Ranges, factor: float) -> Ranges:
    """``ranges`` with every tensor's (min, max) multiplied by ``factor`` (a uniform distortion)."""
    tensors = copy.deepcopy(ranges.tensors)
    assert tensors is not None, "calibrated ranges carry ORT's TensorsData"
    for td in tensors["data"].values():
        for key in ("lowest", "highest"):
            value = td[key]
            if isinstance(value, dict):
                value["data"] = (np.asarray(value["data"], dtype=np.float64) * factor).tolist()
            else:
                td[key] = value * factor
    return Ranges(ranges_of(tensors), ranges.cache_file, ranges.cache_hit, 0.0, ranges.key, tensors)


def rescaled_qdq(quant: QuantResult, shared_ops: tuple[str, ...], factor: float):
    """The build's Q/DQ model made from its ranges times ``factor`` (same exclusions and sharing)."""
    qdq = quantize(quant.fp32, rescaled_ranges(quant.ranges, factor), quant.config)
    return share_input_scales(qdq, shared_ops)[0] if shared_ops else qdq


DEFAULT_MIN_COSINE = 0.9  # [verify] min_fp32_cosine: the artifact against FP32, under which only nonsense falls
DEFAULT_MAX_RESCALE_GAIN = 1.0  # [verify] max_rescale_gain_points: what halving or doubling the ranges may win


def fp32_floor(original, quant: QuantResult, feed_sets: list, artifact_outs: list, qdq_outs: list, target) -> dict:
    """The INT8 build against the FP32 model on its held-out inputs: the artifact's worst cosine must
    reach ``min_fp32_cosine``, and no uniform rescale of its ranges (x0.5, x2) may agree with FP32 by
    more than ``max_rescale_gain_points`` agreement-mIoU points over the ranges in use (the Q/DQ
    semantics on both sides)."""
    from deploycc.core.numerics import run_reference
    from deploycc.quantize.stage import shared_scale_ops

    min_cosine = float(target.verify.get("min_fp32_cosine", DEFAULT_MIN_COSINE))
    max_gain = float(target.verify.get("max_rescale_gain_points", DEFAULT_MAX_RESCALE_GAIN))
    refs = [run_reference(original, feeds) for feeds in feed_sets]
    artifact = fp32_figures(refs, artifact_outs)
    in_use = fp32_figures(refs, qdq_outs)["miou_drop"]
    shared = shared_scale_ops(target)
    probes = {}
    for factor in PROBE_FACTORS:
        qdq = rescaled_qdq(quant, shared, factor)
        probes[f"x{factor:g}"] = fp32_figures(refs, [run_reference(qdq, feeds) for feeds in feed_sets])["miou_drop"]
    rescale = {"miou_drop_in_use": in_use, "miou_drop": probes, "gain": in_use - min(probes.values())}
    rescale.update(max_gain=max_gain, **ranges_verdict(quant, rescale["gain"] > max_gain))
    return {
        "reference": "onnxruntime, graph optimizations disabled, original FP32 model",
        "cosine_min": artifact["cosine_min"],
        "argmax_agreement_min": artifact["argmax_agreement_min"],
        "miou_drop": artifact["miou_drop"],
        "min_cosine": min_cosine,
        "rescale": rescale,
        "ok": bool(artifact["cosine_min"] >= min_cosine and rescale["ok"]),
    }


def ranges_verdict(quant: QuantResult, beaten: bool) -> dict:
    """Ranges a rescale beats are refused only when they came from the cache and differ from a
    calibration made now: a fresh calibration is what calibration gives, even where a rescale does
    better (measured: random-weight mac_large at 784 x 784 on xavier-int8, x2 by 7.7 points)."""
    if not beaten:
        return {"ok": True, "ranges": "the best of the three"}
    if not quant.ranges.cache_hit or quant.calibration_set is None:
        return {"ok": True, "ranges": "calibrated in this build (a rescale does better: reported, not gated)"}
    fresh = fresh_ranges(quant.fp32, quant.calibration_set, quant.config)
    same = fresh.keys() == quant.ranges.values.keys() and all(
        np.allclose(fresh[k], quant.ranges.values[k], rtol=1e-4, atol=1e-7) for k in fresh
    )
    if same:
        return {"ok": True, "ranges": "the cache entry equals a calibration made now (a rescale does better)"}
    return {"ok": False, "ranges": "the cache entry differs from a calibration made now"}
