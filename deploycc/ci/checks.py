"""The verification gates of one (model, target) pair: mIoU and its drop, latency and its LUT error.

Accuracy goes through ``deploycc.verify.evaluate`` (the same arithmetic as ``deploycc verify``), with the
FP32 model on ONNX Runtime as reference when a drop gate asks for it; latency through the common
protocol (``deploycc.verify.measure``), or ``deploycc.lut.gate.latency_check`` when the target has a LUT.
Each gate is a record: figure, limit, status (``deploycc.core.verdict``: passed, failed, or not_run
with the reason and what would run it). A gate whose figure cannot be computed (the data does not
fit the model, the artifact is broken) failed; one this machine cannot run (the artifact runs
only on its device) did not run.
"""

from __future__ import annotations

from pathlib import Path

from deploycc.core.errors import Unavailable, UserError
from deploycc.core.scratch import scratch_dir
from deploycc.core.verdict import FAILED, NOT_RUN, PASSED
from deploycc.verify.measure import time_artifact

from .config import Config, ModelSpec

UNITS = {
    "build": "",
    "numerics": "",
    "min-miou": "mIoU",
    "max-miou-drop": "mIoU points",
    "max-latency-error": "%",
    "max-latency": "ms",
}


def gate(name: str, status: str, value=None, limit=None, message: str = "", needs: str | None = None) -> dict:
    """One gate's record; a not_run gate carries ``reason`` (= its message) and ``needs``."""
    assert status in (PASSED, FAILED, NOT_RUN), status
    g = {
        "gate": name,
        "status": status,
        "ok": status == PASSED,
        "value": value,
        "limit": limit,
        "unit": UNITS.get(name, ""),
        "message": message,
    }
    if status == NOT_RUN:
        g.update(reason=message, needs=needs or "a machine that can run this artifact")
    return g


def passed_or_failed(ok: bool) -> str:
    return PASSED if ok else FAILED


def not_run_gates(names: list[str], gates: dict, why: str, needs: str) -> list[dict]:
    """The configured gates ``names`` (project-file keys) as not run, each with why and what would run it."""
    return [gate(GATE_OF[g], NOT_RUN, limit=gates.get(g), message=why, needs=needs) for g in names]


GATE_OF = {
    "min_miou": "min-miou",
    "max_miou_drop": "max-miou-drop",
    "max_latency_error_pct": "max-latency-error",
    "max_latency_ms": "max-latency",
}


def accuracy_gates(cfg, model, artifact, gates, folder, record, skip, progress) -> None:
    """min-miou and max-miou-drop for one pair, appended to ``record``; ``skip`` = (why, needs) when
    the artifact cannot run here."""
    wanted = [g for g in ("min_miou", "max_miou_drop") if g in gates]
    if folder is None or not wanted:
        return
    if skip:
        record["gates"].extend(not_run_gates(wanted, gates, *skip))
        return
    if progress:
        progress(record["pair"], "accuracy")
    try:
        figures, page = measure_accuracy(cfg, model, artifact, folder, "max_miou_drop" in gates)
    except Unavailable as exc:
        record["gates"].extend(not_run_gates(wanted, gates, str(exc), "a machine that can run this artifact"))
        return
    except UserError as exc:
        for g in wanted:
            record["gates"].append(gate(GATE_OF[g], FAILED, limit=gates.get(g), message=f"not computable: {exc}"))
        return
    record["accuracy"] = figures
    if "min_miou" in gates:
        value = figures["miou"]
        ok = value is not None and value >= gates["min_miou"]
        record["gates"].append(
            gate(
                "min-miou",
                passed_or_failed(ok),
                value,
                gates["min_miou"],
                f"mIoU {_pct(value)} over {figures['images']} images (limit {_pct(gates['min_miou'])})",
            )
        )
    if "max_miou_drop" in gates:
        value = figures.get("miou_drop")
        ok = value is not None and value <= gates["max_miou_drop"]
        record["gates"].append(
            gate(
                "max-miou-drop",
                passed_or_failed(ok),
                value,
                gates["max_miou_drop"],
                f"FP32 reference mIoU {_pct(figures.get('reference_miou'))} minus artifact mIoU "
                f"{_pct(figures['miou'])} (limit {100 * gates['max_miou_drop']:.2f} points)",
            )
        )
    if record.get("report_dir"):
        from .pages import write_verify_page

        write_verify_page(Path(record["report_dir"]) / "verify.html", record, *page)


def measure_accuracy(cfg: Config, model: ModelSpec, artifact: Path, folder: Path, with_reference: bool):
    """(the figures the pair's record keeps, (what its verify report shows, its sample pictures))."""
    from deploycc.data import open_dataset
    from deploycc.pipeline.runtime import open_artifact
    from deploycc.verify.evaluate import OnnxReference, artifact_label, evaluate_artifact, model_io
    from deploycc.verify.samples import sample_pictures

    dataset = open_dataset(folder, cfg.split).first(cfg.max_images)
    manifest, session = open_artifact(artifact, cfg.threads or None)
    ref = OnnxReference(reference_model(model), cfg.threads) if with_reference else None
    where, ref_where = artifact_label(artifact, manifest), f"reference {model.source}"
    result, io, prep, _ = evaluate_artifact(session, manifest, dataset, where, ref, ref_where)
    out = {
        "images": result["images"],
        "miou": result["accuracy"]["miou"],
        "pixel_accuracy": result["accuracy"]["pixel_accuracy"],
        "iou": result["accuracy"]["iou"],
        "data": dataset.describe(),
    }
    if ref is not None:
        out.update(
            reference_miou=result["reference_accuracy"]["miou"],
            miou_drop=result.get("miou_drop"),
            agreement=result.get("agreement"),
        )
    page = {
        **result,
        "artifact": str(artifact),
        "target": manifest["target"]["name"],
        "backend": manifest["backend"],
        "reference": model.source if ref is not None else None,
        "data": dataset.describe(),
    }
    pictures = sample_pictures(session, io, dataset, prep, ref, model_io(ref, ref_where) if ref is not None else None)
    return out, (page, pictures)


def reference_model(model: ModelSpec):
    """The FP32 ONNX model the pair is built from (architectures are exported for the purpose)."""
    from deploycc.pipeline.sources import load_source

    with scratch_dir("ci-ref") as scratch:
        onnx_model, _ = load_source(
            model.source, Path(scratch), model.input_shape, str(model.weights) if model.weights else None
        )
    return onnx_model


def latency_gates(cfg, artifact, gates, lut, record, skip, progress) -> None:
    """max-latency-error and max-latency for one pair, appended to ``record``; ``skip`` = (why,
    needs) when the artifact cannot run here. Latency is timed on this machine, so a target whose
    device this is not has its latency gates not run (never a host figure passed off as the
    device's)."""
    wanted = [g for g in ("max_latency_error_pct", "max_latency_ms") if g in gates]
    if not wanted:
        return
    if skip:
        record["gates"].extend(not_run_gates(wanted, gates, *skip))
        return
    if progress:
        progress(record["pair"], "latency")
    try:
        figures = measure_latency(cfg, artifact, lut, gates.get("max_latency_error_pct"))
    except Unavailable as exc:
        record["gates"].extend(not_run_gates(wanted, gates, str(exc), "a machine that can run this artifact"))
        return
    except UserError as exc:
        for g in wanted:
            record["gates"].append(gate(GATE_OF[g], FAILED, limit=gates.get(g), message=f"not computable: {exc}"))
        return
    record["latency"] = figures
    if "max_latency_error_pct" in gates:
        e, limit = figures["error_pct"], gates["max_latency_error_pct"]
        record["gates"].append(
            gate(
                "max-latency-error",
                passed_or_failed(abs(e) <= limit),
                e,
                limit,
                f"measured {figures['measured_ms']:.2f} ms ({figures['statistic']}), LUT "
                f"{figures['predicted_ms']:.2f} ms, error {e:+.1f} % (limit ±{limit:g} %)",
            )
        )
    if "max_latency_ms" in gates:
        value, limit = figures["median_ms"], gates["max_latency_ms"]
        record["gates"].append(
            gate(
                "max-latency",
                passed_or_failed(value <= limit),
                value,
                limit,
                f"median {value:.2f} ms over {figures['runs']} runs (limit {limit:g} ms)",
            )
        )


def measure_latency(cfg: Config, artifact: Path, lut: Path | None, max_error_pct: float | None) -> dict:
    """Median etc. with the protocol; with a LUT, also its prediction and the error against it."""
    if lut is not None:
        from deploycc.lut.gate import latency_check

        check = latency_check(artifact, lut, max_error_pct or 1e9)
        lat = check["latency"]
        return {
            **lat,
            "predicted_ms": check["predicted_ms"],
            "measured_ms": check["measured_ms"],
            "error_pct": check["error_pct"],
            "statistic": check["statistic"],
            "lut": str(lut),
            "threads": check["threads"],
        }
    _, latency = time_artifact(artifact, cfg.protocol, cfg.threads)
    return {**latency.to_dict(), "statistic": "median", "threads": cfg.threads}


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"
