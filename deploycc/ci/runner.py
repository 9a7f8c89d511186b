"""Build and verify every (model, target) pair of a project file, and judge its gates.

Per pair: the build comes from the content-hashed cache or is made by ``deploycc.pipeline.pipeline.build``
(numerics are checked inside the build); then, where the artifact runs on this machine, mIoU on
the validation data (with the FP32 model on ONNX Runtime as reference when a drop gate asks for
it, through ``deploycc.verify.evaluate``), and latency with the common protocol, against the target's
LUT when one is configured (``deploycc.lut.gate.latency_check``). Each gate is a record with its
figure, its limit and a verdict (``deploycc.core.verdict``): passed, failed, or not_run with the
reason and what would run it (e.g. a device-ready bundle whose engine is built on the Jetson).
A waiver in the project file is recorded on the gate it names.

A pair is passed when every gate passed or is waived, failed when one failed, and "unverified"
when none failed but one did not run; the run's outcome is the worst of its pairs, and
``deploycc ci`` exits 0, 1 or 3 for passed, failed, unverified. A pair's failure never stops the
others: the report always covers every pair.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from deploycc.core.cache import FolderCache, environment
from deploycc.core.errors import GateFailed, Unavailable, UserError
from deploycc.core.verdict import FAILED, NOT_RUN, PASSED, holds, label, outcome
from deploycc.pipeline.artifact import read_manifest
from deploycc.targets import Target, load_target
from deploycc.targets.backend import get_backend
from deploycc.verify.measure import machine_facts

from .cache import BuildCache, folder_digest, key_of, model_digest, toolchain
from .checks import GATE_OF, accuracy_gates, latency_gates, not_run_gates
from .checks import gate as _gate
from .config import Config, DataSource, ModelSpec
from .pages import build_with_report, report_dir


def run_ci(cfg: Config, use_cache: bool = True, only: list[str] | None = None, progress=None) -> dict:
    """Every pair's record plus the summary; ``progress(pair, step)`` reports what is running."""
    pairs = cfg.pairs()
    if only:
        names = {f"{m.name}@{t}" for m, t in pairs}
        unknown = sorted(set(only) - names)
        if unknown:
            raise UserError(
                f"--only {', '.join(unknown)}: no such pair in {cfg.path} (pairs: {', '.join(sorted(names))})"
            )
        pairs = [(m, t) for m, t in pairs if f"{m.name}@{t}" in only]
    start = time.perf_counter()
    data = _resolve_data(cfg, progress)
    cache = BuildCache(cfg.cache / "builds")
    records = [run_pair(cfg, model, target, cache, data, use_cache, progress) for model, target in pairs]
    result = outcome([g for r in records for g in r["gates"]]) if records else "passed"
    return {
        "project": cfg.name,
        "config": str(cfg.path),
        "seconds": round(time.perf_counter() - start, 3),
        "machine": machine_facts(),
        "data": {k: (str(v) if v else None) for k, v in data.items()},
        "gates": cfg.gates,
        "gates_per_target": cfg.target_gates,
        "pairs": records,
        "waivers": waiver_use(cfg, records),
        "summary": summarize(records),
        "outcome": result,
        "ok": result == "passed",
    }


def summarize(records: list[dict]) -> dict:
    gates = [g for r in records for g in r["gates"]]
    count = {s: sum(1 for g in gates if g["status"] == s) for s in (PASSED, FAILED, NOT_RUN)}
    return {
        "pairs": len(records),
        "gates": len(gates),
        **count,
        "waived": sum(1 for g in gates if g.get("waived")),
        "pairs_by_status": {s: sum(1 for r in records if r["status"] == s) for s in ("passed", "failed", "unverified")},
    }


def waiver_use(cfg: Config, records: list[dict]) -> list[dict]:
    """Every waiver of the project file, with the verdict it covered (or that it was not needed)."""
    found = {(r["pair"], g["gate"]): g["status"] for r in records for g in r["gates"]}
    return [{**w, "covers": found.get((w["pair"], w["gate"]), "no such gate in this run")} for w in cfg.waivers]


def apply_waivers(cfg: Config, record: dict) -> None:
    """Mark the gates the project file waives; a waived gate keeps its own verdict."""
    for g in record["gates"]:
        w = cfg.waiver(record["pair"], g["gate"])
        if w is not None and g["status"] != PASSED:
            g["waived"] = w["reason"]


def _resolve_data(cfg: Config, progress) -> dict:
    return {
        "validation": _data_folder(cfg, cfg.validation, "val", progress),
        "calibration": _data_folder(cfg, cfg.calibration, "train", progress),
    }


def _data_folder(cfg: Config, source: DataSource | None, split: str, progress) -> Path | None:
    """The folder of ``source``; synthetic scenes are generated once into the cache, by recipe
    (and deploycc's source and CPU), and every file is checked against its recorded sha256 each
    time the set is used: an edited, missing or added file regenerates it."""
    if source is None:
        return None
    if source.path is not None:
        return source.path
    from deploycc.data.synth import write_split

    s = source.synth
    assert s is not None, "a DataSource has a path or a synth recipe"
    recipe = {"n": s["n"], "size": list(s["size"]), "seed": s["seed"], "split": split, **environment()}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]

    def make(folder: Path) -> None:
        if progress:
            progress("data", f"synthesizing {s['n']} scenes {s['size'][0]}x{s['size'][1]} ({split})")
        write_split(folder, split, s["n"], tuple(s["size"]), s["seed"], overwrite=True)

    return FolderCache(cfg.cache / "data", "ci-data").get_or_make(key, make)[0]


def _build_options(cfg: Config, model: ModelSpec, calibration: Path | None, target: Target):
    """The build options of a pair; the calibration settings only for an INT8 target (a build
    refuses options that do not apply to its target)."""
    from deploycc.pipeline.pipeline import BuildOptions

    options = BuildOptions(
        input_shape=model.input_shape,
        weights=str(model.weights) if model.weights else None,
        threads=cfg.threads,
        seed=cfg.seed,
    )
    names = {f.name for f in dataclasses.fields(BuildOptions)} if target.precision == "int8" else set()
    for field, value in (
        ("calib_data", str(calibration) if calibration else None),
        ("calib_method", cfg.calib_method),
        ("calib_images", cfg.calib_images),
    ):
        if value is not None and field in names:
            setattr(options, field, value)
    return options


def pair_key(cfg: Config, model: ModelSpec, target: Target, calibration: Path | None, options) -> tuple[str, dict]:
    from deploycc.lut.table import target_digest

    backend = get_backend(target.backend)
    body = {
        "model": model_digest(model.source, model.weights),
        "input_shape": model.input_shape,
        "target": {"name": target.name, "definition": target_digest(target)},
        "calibration": folder_digest(calibration) if calibration and target.precision == "int8" else None,
        "calib_method": cfg.calib_method,
        "calib_images": cfg.calib_images,
        "options": {"threads": options.threads, "seed": options.seed},
        "toolchain": toolchain(backend.versions()),
    }
    return key_of(body), body


def run_pair(
    cfg: Config, model: ModelSpec, target_name: str, cache: BuildCache, data: dict, use_cache: bool, progress=None
) -> dict:
    pair = f"{model.name}@{target_name}"
    record: dict[str, Any] = {
        "pair": pair,
        "model": model.name,
        "target": target_name,
        "source": model.source,
        "gates": [],
    }
    start = time.perf_counter()
    try:
        _check_pair(cfg, model, target_name, cache, data, use_cache, record, progress)
    except Unavailable as exc:
        needs = "a machine where this target's compiler is installed"
        record["gates"].append(_gate("build", NOT_RUN, message=str(exc), needs=needs))
        record["gates"].append(_gate("numerics", NOT_RUN, message="no artifact (the build did not run)", needs=needs))
        record["gates"].extend(
            not_run_gates(
                configured_gates(cfg, target_name),
                cfg.gates_for(target_name),
                "no artifact (the build did not run)",
                needs,
            )
        )
    record["seconds"] = round(time.perf_counter() - start, 3)
    apply_waivers(cfg, record)
    record["status"] = outcome(record["gates"])
    return record


def configured_gates(cfg: Config, target_name: str) -> list[str]:
    """The project-file gates that apply to a pair of ``target_name`` (keys of ``GATE_OF``)."""
    gates = cfg.gates_for(target_name)
    return [g for g in GATE_OF if g in gates and (cfg.validation is not None or "miou" not in g)]


def _check_pair(cfg, model, target_name, cache, data, use_cache, record, progress) -> None:
    target = load_target(target_name)
    reason = get_backend(target.backend).available()
    if reason:
        raise Unavailable(f"backend {target.backend} cannot run here: {reason}")
    options = _build_options(cfg, model, data["calibration"], target)
    key, body = pair_key(cfg, model, target, data["calibration"], options)
    record["cache_key"] = key
    pages = report_dir(cfg.cache, key)
    record["report_dir"] = str(pages)
    (pages / "verify.html").unlink(missing_ok=True)  # written again below when accuracy is measured
    artifact, status = cache.lookup(key) if use_cache else (None, "not used (--no-cache)")
    record["cache"] = status
    if artifact is None:
        if progress:
            progress(record["pair"], "build")
        t0 = time.perf_counter()
        try:
            artifact, served = cache.store(
                key,
                body,
                lambda out: build_with_report(model.source, target_name, out, options, pages / "build.html"),
                reuse=use_cache,
            )
            if served:  # another run built it while this one waited for the entry's lock
                record["cache"] = status = "hit (built by a concurrent run)"
        except GateFailed as exc:
            record["gates"].append(_gate("build", PASSED, message="compiled"))
            record["gates"].append(_gate("numerics", FAILED, message=str(exc)))
            return
        except Unavailable:
            raise
        except UserError as exc:
            record["gates"].append(_gate("build", FAILED, message=str(exc)))
            return
        record["build_seconds"] = round(time.perf_counter() - t0, 3)
    record["artifact"] = str(artifact)
    manifest = read_manifest(artifact)
    record["gates"].append(_gate("build", PASSED, message=f"cache {status}"))
    record["gates"].append(_numerics_gate(manifest))
    remaining = manifest.get("remaining") or []
    skip = None
    if remaining:
        step = remaining[0]
        record["remaining"] = remaining
        skip = (
            f"the artifact runs on its device, not here ({step.get('what', '')})",
            f"the device: {step.get('command', '')}",
        )
    gates = cfg.gates_for(target_name)
    accuracy_gates(cfg, model, artifact, gates, data["validation"], record, skip, progress)
    latency_gates(cfg, artifact, gates, cfg.luts.get(target_name), record, skip, progress)


def _numerics_gate(manifest: dict) -> dict:
    v = manifest.get("verification", {})
    if v.get("status") == NOT_RUN or v.get("skipped") or not v.get("outputs"):
        return _gate(
            "numerics",
            NOT_RUN,
            message=v.get("reason") or v.get("skipped") or "no outputs were compared",
            needs=v.get("needs"),
        )
    worst = max((o.get("max_abs", 0.0) for o in v.get("outputs", [])), default=None)
    subject = v.get("subject") or "the artifact"
    offline = manifest.get("trt_offline_checks") or {}
    gated = [f"{k} {c['status']}" for k, c in offline.items() if isinstance(c, dict) and "status" in c]
    also = f"; TensorRT offline checks (gating): {', '.join(gated)}" if gated else ""
    return _gate(
        "numerics",
        PASSED if v.get("ok") else FAILED,
        value=worst,
        message=f"{subject} vs ONNX Runtime (reference, optimizations off) within the target's tolerance{also}",
    )


def unverified_line(report: dict) -> str:
    """One line for exit 3: which gates did not run, and what would run the first."""
    open_gates = [(r["pair"], g) for r in report["pairs"] for g in r["gates"] if not holds(g)]
    pair, g = open_gates[0]
    more = f"; and {len(open_gates) - 1} more" if len(open_gates) > 1 else ""
    return (
        f"ci: {len(open_gates)} gate(s) did not run and are not waived: {pair} gate {g['gate']} "
        f"{label(g['status'])}: {g.get('reason', g['message'])} (needs {g.get('needs')}){more}; run them "
        f"there, or waive them in {report['config']} ([[waivers]] pair, gate, reason)"
    )


def failure_line(report: dict) -> str:
    bad = [(r["pair"], g) for r in report["pairs"] for g in r["gates"] if g["status"] == FAILED and not g.get("waived")]
    parts = []
    for pair, g in bad[:3]:
        if g["value"] is not None and g["limit"] is not None:
            parts.append(f"{pair} gate {g['gate']} {g['status']}: {_figure(g)} (limit {_figure(g, 'limit')})")
        else:
            parts.append(f"{pair} gate {g['gate']} {g['status']}: {g['message']}")
    more = f"; and {len(bad) - 3} more" if len(bad) > 3 else ""
    return f"ci: {len(bad)} gate(s) did not hold: " + "; ".join(parts) + more


def _figure(g: dict, which: str = "value") -> str:
    v = g[which]
    if g["gate"] in ("min-miou", "max-miou-drop"):
        return f"{100 * v:.2f} %"
    if g["gate"] == "max-latency-error":
        return f"{v:+.1f} %" if which == "value" else f"±{v:g} %"
    if g["gate"] == "max-latency":
        return f"{v:.2f} ms"
    return f"{v:.3g}"
