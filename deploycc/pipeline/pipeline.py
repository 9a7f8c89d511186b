"""``deploycc build``: load -> simplify -> target passes -> compile -> artifact -> verify.

The output path is checked before anything is read (``artifact.check_output``); the model is
loaded, simplified, rewritten and quantized in a scratch folder, and only then is a staging folder
made beside the output, where the backend compiles; only a build whose numerics hold (or could not
be checked here: recorded as ``not_run`` with the reason and what would run it, and the command
exits 3, "unverified") is renamed into place. The verification compares the artifact, run through the common Session
interface, with the original model on ONNX Runtime (graph optimizations off) on fixed-seed inputs.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from deploycc import __version__
from deploycc.core.cache import remove_entry
from deploycc.core.errors import GateFailed, UserError, first_line
from deploycc.core.loader import graph_inputs
from deploycc.core.metadata import metadata_json, model_sha256, preprocessing_of
from deploycc.core.numerics import Tolerance, compare_all, random_feeds, run_reference, value_specs
from deploycc.core.scratch import clean_stale_scratch, scratch_dir
from deploycc.core.second_opinion import second_opinion
from deploycc.core.verdict import FAILED, PASSED, not_run
from deploycc.pipeline.artifact import check_output, staging_dir, write_manifest
from deploycc.pipeline.failure import failed_check_layers, failure_of
from deploycc.pipeline.options import check_build_options
from deploycc.pipeline.sources import load_source
from deploycc.pipeline.stages import Stages
from deploycc.quantize.floor import fp32_floor
from deploycc.quantize.stage import quantization_error, quantize_for_target
from deploycc.targets import Target, load_target
from deploycc.targets.backend import Backend, get_backend, require_available
from deploycc.targets.placement import placement_map
from deploycc.targets.tensorrt.offline_checks import failures as trt_failures

FP32_AFTER_PASSES = "the FP32 graph after the target's passes, on ONNX Runtime with optimizations off"


@dataclass
class BuildOptions:
    input_shape: object = None
    weights: str | None = None
    passes: list[str] | None = None  # None: the target's own list
    verify_passes: bool = True
    simplify: bool = True
    force: bool = False
    tune_trials: int = 0
    trials_per_task: int | None = None
    tuning_db: str | None = None
    tune_remote: str | None = None  # TVM tuning: measure on the devices of this RPC tracker (HOST:PORT)
    tune_key: str | None = None  # ... registered under this key
    threads: int = 0
    seed: int = 0
    extra: dict = field(default_factory=dict)
    backend: str | None = None  # override the target's backend (e.g. tvm for xavier-int8)
    calib_data: str | None = None  # INT8: folder of calibration images (default: synthetic)
    calib_method: str | None = None  # INT8: minmax | entropy | percentile (default: the target's)
    calib_images: int | None = None
    max_miou_drop: float | None = None  # INT8: keep sensitive layers in float until this holds
    overwrite: bool = False  # replace an existing output that is not a deploycc artifact


@dataclass
class BuildResult:
    out: Path
    target: Target
    manifest: dict
    times: dict
    ok: bool
    passes: list = field(default_factory=list)  # pass records with their times (the manifest blanks them)
    legality: dict | None = None  # per node accelerator or fallback, before and after the passes
    log: dict = field(default_factory=dict)  # run-dependent facts (cache hits, seconds), kept out of the manifest
    failure: dict | None = None  # the first failed check: {"check", "reason", "layers"} (nothing is written)

    def report_data(self, model: str, written: bool) -> dict:
        """What the build report shows (``deploycc.report.build.page``), as plain data."""
        m = self.manifest
        return {
            "model": model,
            "artifact": str(self.out),
            "written": written,
            "target": self.target.name,
            "backend": m["backend"],
            "ok": self.ok,
            "failure": self.failure,
            "stage_seconds": self.times,
            "passes": self.passes,
            "legality": self.legality,
            "verification": m["verification"],
            "trt_offline_checks": m.get("trt_offline_checks"),
            "remaining": m["remaining"],
            "toolchain": m.get("toolchain", {}),
        }


def build(
    model: str, target_name: str, out: str | Path, options: BuildOptions | None = None, stages: Stages | None = None
) -> BuildResult:
    options = options or BuildOptions()
    stages = stages or Stages()
    target = _with_backend(load_target(target_name), options.backend)
    backend = get_backend(target.backend)
    check_build_options(options, target)
    require_available(backend)
    out = check_output(out, [model, options.weights, options.calib_data, options.tuning_db], options.overwrite)
    clean_stale_scratch()
    with scratch_dir() as scratch:
        with stages.step("load"):
            original, source = load_source(model, Path(scratch), options.input_shape, options.weights)
        with stages.step("simplify"):
            graph = simplify(original, source) if options.simplify else original
        with stages.step("passes"):
            before = graph
            graph, records = _run_target_passes(graph, target, options)
        legality = placement_map(before, graph, target)
        with stages.step("quantize"):
            quant = quantize_for_target(graph, original, target, options)
        with staging_dir(out) as stage:
            compiler_log: list[str] = []  # what the compiler printed (TVM's own log lines), kept off the console
            manifest = _compile_and_verify(
                original, source, graph, quant, target, backend, records, options, stage, stages, out, compiler_log
            )
            log: dict = {
                "stage_seconds": dict(stages.times),
                **({"quantization": quant.log()} if quant is not None else {}),
            }
            if compiler_log:
                log["compiler_log"] = compiler_log
            failure = failure_of(manifest, target.name)
            result = BuildResult(
                out,
                target,
                manifest,
                dict(stages.times),
                manifest["verification"]["status"] == PASSED and failure is None,
                [r.to_dict() for r in records],
                legality,
                log,
                failure,
            )
            if failure is not None:
                _drop_ranges_below_the_floor(quant, manifest["verification"])
                failed = GateFailed(failure["reason"])
                failed.result = result  # what the build found, for its report (nothing is written at out)
                raise failed
    return result


def _compile_and_verify(
    original, source, graph, quant, target, backend, records, options, stage, stages, out, compiler_log: list
):
    """Compile into ``stage``, verify, and write the manifest there (whether numerics hold or not);
    what the compiler printed is appended to ``compiler_log``."""
    with stages.step("compile"):
        passed, graph = graph, _compile_input(graph, quant, backend)
        backend.check_supported(graph, target)
        result = backend.compile(graph, target, stage, _compile_options(options, quant, out))
        compiler_log.extend(result.log)
    manifest = _manifest(original, source, target, backend, result, records, options)
    if quant is not None:
        manifest["quantization"] = quant.manifest() | {"error": quantization_error(original, quant)}
    with stages.step("verify"):
        manifest["verification"] = _verify(original, backend, stage, manifest, target, options, quant, passed)
        if backend.name == "tensorrt":  # what TensorRT will read, checked here (it cannot run here)
            manifest["trt_offline_checks"] = _trt_offline_checks(stage, original, quant, target, options)
            manifest["trt_offline_checks"]["failures"] = trt_failures(manifest["trt_offline_checks"])
    return write_manifest(stage, manifest)


def simplify(model: onnx.ModelProto, source: Path) -> onnx.ModelProto:
    """onnxsim with BatchNorm fusion off, so that deploycc's own fold-bn pass sees every BN."""
    import onnxsim  # here, not at import: it imports torch (seconds) and only build needs it

    try:
        simplified, ok = onnxsim.simplify(model, skip_fuse_bn=True)
    except Exception as exc:
        raise UserError(f"{source}: onnxsim cannot simplify the model: {first_line(exc)}") from None
    return simplified if ok else model


def _run_target_passes(graph, target: Target, options: BuildOptions):
    from deploycc.passes import PassContext, resolve_passes, run_passes  # onnx_ir: not paid by `deploycc --help`

    names = list(target.passes) if options.passes is None else options.passes
    ctx = PassContext(target=target, force=options.force, options=options.extra)
    passes = [cls(ctx) for cls in resolve_passes(names)]
    return run_passes(graph, passes, verify=options.verify_passes, seed=options.seed)


def _compile_options(options: BuildOptions, quant=None, out: Path | None = None) -> dict:
    return {
        "tune_trials": options.tune_trials,
        "trials_per_task": options.trials_per_task,
        "tuning_db": options.tuning_db,
        "tune_remote": options.tune_remote,
        "tune_key": options.tune_key,
        "quantization": quant,
        "artifact_path": str(out) if out else None,
        **options.extra,
    }


def _with_backend(target: Target, backend: str | None) -> Target:
    """``--backend``: the same target through another compiler (its settings table must exist)."""
    if not backend or backend == target.backend:
        return target
    if backend in ("tvm", "ort", "tensorrt") and backend not in target.settings:
        raise UserError(f"--backend {backend}: target {target.name} has no {backend} settings table")
    import dataclasses

    if backend == "tvm" and target.precision == "int8":
        # TVM 0.27 imports Q/DQ as float fake-quantization (no INT8 conv kernels): build in FP32.
        return dataclasses.replace(target, backend=backend, precision="fp32")
    return dataclasses.replace(target, backend=backend)


def _compile_input(graph, quant, backend):
    """What the compiler gets: the Q/DQ model for ORT/TVM; TensorRT takes the FP32 graph plus the
    calibration (it writes the cache and carries the Q/DQ model itself)."""
    if quant is None or backend.name == "tensorrt":
        return graph
    return quant.qdq


def _manifest(original, source, target: Target, backend: Backend, result, records, options) -> dict:
    inputs = value_specs(graph_inputs(original))
    return {
        "deploycc_version": __version__,
        "source": {"file": source.name, "sha256": model_sha256(original)},
        "target": target.to_dict() | {"source": Path(target.source).name},  # no path of this machine
        "backend": backend.name,
        "backend_info": result.info,
        "toolchain": {**backend.versions(), "onnx": onnx.__version__, "python": platform.python_version()},
        "passes": [r.to_dict() | {"seconds": None} for r in records],
        "inputs": [s.to_dict() for s in inputs],
        "outputs": [s.to_dict() for s in value_specs(original.graph.output)],
        "preprocessing": preprocessing_of(original),
        "architecture": metadata_json(original, "deploycc.arch"),  # for the LUT latency gate
        "runtime": {"threads": options.threads},
        "remaining": result.remaining,
    }


def _verify(
    original,
    backend: Backend,
    stage: Path,
    manifest: dict,
    target: Target,
    options: BuildOptions,
    quant=None,
    passed=None,
) -> dict:
    tol = Tolerance.of(target.verify)
    subject, subject_model = "the artifact", None
    if manifest["remaining"]:
        proxy = backend.proxy_session(stage, manifest)
        if proxy is None:
            step = manifest["remaining"][0]
            return {"ok": False, **not_run(step["what"], step["command"]), "outputs": []}
        session, subject, subject_model = proxy.session, proxy.subject, proxy.model
    else:
        session = backend.load(stage, manifest)
    reference, reference_text = original, "onnxruntime, graph optimizations disabled, original model"
    if quant is not None:
        # INT8: held-out images, not noise (noise leaves the calibrated ranges). The gate compares the
        # INT8 execution with the exact semantics of its own Q/DQ model (ORT, optimizations off: float
        # fake-quantization), which catches a wrong kernel, fusion or cache; the quantization error
        # itself (Q/DQ vs FP32) is a design choice, reported in quantization.error and budgeted by
        # --max-miou-drop.
        feed_sets, inputs = quant.verify_feeds, quant.info["held_out"]["source"]
        reference, reference_text = quant.qdq, "onnxruntime, graph optimizations disabled, the Q/DQ model"
    else:
        specs = value_specs(graph_inputs(original))
        feed_sets, inputs = [random_feeds(specs, options.seed)], f"standard normal, seed {options.seed}"
    names = [o.name for o in original.graph.output]
    runs = [(feeds, session.run(feeds)) for feeds in feed_sets]
    expected = [run_reference(reference, feeds) for feeds in feed_sets]
    stats = [s for (feeds, got), ref in zip(runs, expected) for s in compare_all(names, ref, got, tol)]
    second = second_opinion(reference, feed_sets[0], expected[0])  # is the reference itself right?
    ok = all(s.ok for s in stats) and second["status"] != FAILED
    result = {
        "status": PASSED if ok else FAILED,
        "ok": ok,
        "seed": options.seed,
        "tolerance": tol.__dict__,
        "inputs": inputs,
        "subject": subject,
        "reference": reference_text,
        "outputs": [s.to_dict() for s in stats],
        "second_opinion": second,
    }
    if quant is not None:
        outs = [got for _, got in runs]
        result["fp32_floor"] = fp32_floor(original, quant, feed_sets, outs, expected, target)
        result["ok"] = result["ok"] and result["fp32_floor"]["ok"]
        result["status"] = PASSED if result["ok"] else FAILED
    if session.int8_kernels:  # which INT8 kernels ran, and the CPU feature that chose them
        result["int8_kernels"] = session.int8_kernels
    if not result["ok"]:  # where the two sides part: every intermediate tensor compared
        # Layer by layer, FP32 is the graph after the target's passes (each pass was checked against
        # the original by the pass manager): a pass such as fold-bn keeps a tensor's name and changes
        # its meaning, which a comparison with the original would report as a divergence.
        models = {
            "original": passed,
            "reference": reference if quant is not None else passed,
            "reference_text": reference_text if quant is not None else FP32_AFTER_PASSES,
            "subject": subject_model if subject_model is not None else _subject_onnx(passed, quant),
            "subject_text": _subject_onnx_text(subject_model, backend, quant),
            "qdq": quant.qdq if quant is not None else None,
        }
        result["layers"] = failed_check_layers(result, models, feed_sets[0], tol)
    return result


def _subject_onnx(compiled, quant):
    """The ONNX model the artifact computes: the Q/DQ model for INT8, else the graph the compiler got."""
    return quant.qdq if quant is not None else compiled


def _subject_onnx_text(proxy_model, backend: Backend, quant) -> str:
    if proxy_model is not None:
        return "the model its proxy runs (float16 simulation), on ONNX Runtime"
    if quant is not None:
        return "the Q/DQ model the INT8 artifact computes, on ONNX Runtime with optimizations off"
    return f"the ONNX graph given to the compiler ({backend.name}), on ONNX Runtime with optimizations off"


def _trt_offline_checks(stage: Path, original, quant, target: Target, options: BuildOptions) -> dict:
    from deploycc.targets.tensorrt.offline_checks import offline_checks

    feeds = (
        quant.verify_feeds if quant is not None else [random_feeds(value_specs(graph_inputs(original)), options.seed)]
    )
    return offline_checks(stage, original, quant, feeds, Tolerance.of(target.verify))


def _drop_ranges_below_the_floor(quant, verification: dict) -> None:
    """A cached calibration entry whose artifact fails the FP32 floor is removed with it: kept, it
    would fail every later build of the model the same way (the next one calibrates afresh)."""
    floor = verification.get("fp32_floor")
    if quant is None or not floor or floor.get("ok"):
        return
    remove_entry(quant.ranges.cache_file)
    print(
        f"deploycc: calibration cache entry {quant.ranges.cache_file} gave an artifact below the FP32 floor; "
        "removed, the next build calibrates again",
        file=sys.stderr,
    )
