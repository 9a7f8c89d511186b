"""What a failed build says: the check that failed, its one-line reason, and where the two sides part.

A numerics check compares outputs; when it fails, the models behind it are compared tensor by
tensor (``deploycc.core.layerwise``) and the first layer out of tolerance is named in the reason,
the ``--json`` result and the report.
"""

from __future__ import annotations

from deploycc.core.layerwise import NO_ABS_BOUND, compare_layers, first_bad_line
from deploycc.core.numerics import Tolerance
from deploycc.core.verdict import FAILED, not_run


def failed_check_layers(v: dict, models: dict, feeds: dict, tol: Tolerance) -> dict | None:
    """The per-layer table of the build's own failed numerics check. ``models``: ``original`` (FP32),
    ``reference`` (+ ``reference_text``), ``subject`` (+ ``subject_text``: the ONNX the artifact or its
    proxy runs) and ``qdq`` (INT8 builds, else None)."""
    if any(not o["ok"] for o in v["outputs"]):
        return compare_layers(
            models["reference"], models["subject"], feeds, tol, models["reference_text"], models["subject_text"]
        )
    floor = v.get("fp32_floor")
    if floor and floor["cosine_min"] < floor["min_cosine"] and models.get("qdq") is not None:
        cosine_only = Tolerance(atol_rel=NO_ABS_BOUND, rtol=0.0, min_cosine=float(floor["min_cosine"]))
        return compare_layers(
            models["original"],
            models["qdq"],
            feeds,
            cosine_only,
            "the FP32 graph after the target's passes",
            "the Q/DQ model",
        )
    if (v.get("second_opinion") or {}).get("status") == FAILED:
        return not_run(
            "the artifact agrees with ONNX Runtime; it is ONNX Runtime and onnx.reference that disagree on the "
            "reference model itself",
            "a reference both evaluators agree on",
        )
    return None


def failure_of(manifest: dict, target_name: str) -> dict | None:
    """``{"check", "reason", "layers"}`` of the first failed check of a build, or None."""
    v = manifest["verification"]
    if v.get("status") == FAILED:
        check = "numerics" if any(not o["ok"] for o in v["outputs"]) else _other_numerics_check(v)
        return _with_layers(check, failure_line(v, target_name), v.get("layers"))
    checks = manifest.get("trt_offline_checks") or {}
    for name, c in checks.items():
        if isinstance(c, dict) and c.get("status") == FAILED:
            line = f"what TensorRT will read fails its offline check: {name}: {c.get('message', '')}".rstrip(": ")
            return _with_layers(f"trt_offline_checks.{name}", line, c.get("layers"))
    return None


def _other_numerics_check(v: dict) -> str:
    if (v.get("second_opinion") or {}).get("status") == FAILED:
        return "numerics.second_opinion"
    return "numerics.fp32_floor"


def _with_layers(check: str, line: str, layers: dict | None) -> dict:
    where = first_bad_line(layers) if layers and "compared" in layers else ""
    return {"check": check, "reason": f"{line}; {where}" if where else line, "layers": layers}


def failure_line(verification: dict, target_name: str) -> str:
    bad = [o for o in verification["outputs"] if not o["ok"]]
    second = verification.get("second_opinion") or {}
    if not bad and second.get("status") == FAILED:  # the artifact matches ORT, and ORT is in doubt
        worst = next(o for o in second["outputs"] if not o["ok"])
        return (
            f"numerical verification failed on target {target_name}: the reference itself is in doubt: ONNX "
            f"Runtime and onnx.reference disagree on output {worst['output']!r} (max abs {worst['max_abs']:.3g}, "
            f"allowed {worst['allowed_abs']:.3g}); the artifact agrees with ONNX Runtime"
        )
    floor = verification.get("fp32_floor")
    if not bad and floor and not floor["ok"]:
        return f"numerical verification failed on target {target_name}: {floor_line(floor)}"
    bad = bad[0]
    if verification["tolerance"].get("min_argmax_agreement"):
        tol = verification["tolerance"]
        return (
            f"numerical verification failed on target {target_name}: output {bad['output']!r} cosine "
            f"{bad['cosine']:.5f}, argmax agreement {bad['argmax_agreement']:.4f}, max abs error "
            f"{bad['max_abs']:.3g} (need cosine >= {tol['min_cosine']}, agreement >= "
            f"{tol['min_argmax_agreement']}, max abs <= {bad['allowed_abs']:.3g})"
        )
    return (
        f"numerical verification failed on target {target_name}: output {bad['output']!r} max abs error "
        f"{bad['max_abs']:.3g} > allowed {bad['allowed_abs']:.3g} (cosine {bad['cosine']:.6f})"
    )


def floor_line(floor: dict) -> str:
    """Why the INT8 build fails its floor against the FP32 model: too low a cosine, or ranges that
    a uniform rescale would improve by more mIoU points than the target allows."""
    if floor["cosine_min"] < floor["min_cosine"]:
        return (
            f"the INT8 artifact against the FP32 model has cosine {floor['cosine_min']:.4f} < floor "
            f"{floor['min_cosine']} (corrupt calibration ranges or a broken quantization)"
        )
    rescale = floor["rescale"]
    best = min(rescale["miou_drop"], key=rescale["miou_drop"].get)
    return (
        f"the calibration ranges are not what calibration gives ({rescale['ranges']}): scaled {best} they agree "
        "with the FP32 model "
        f"by {rescale['gain']:.2f} agreement-mIoU points more (allowed {rescale['max_gain']:g}; drop "
        f"{rescale['miou_drop_in_use']:.2f} points as used, {rescale['miou_drop'][best]:.2f} scaled)"
    )
