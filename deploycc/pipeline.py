"""``deploycc build``: load -> simplify -> target passes -> compile -> artifact -> verify.

Every stage runs inside a staging folder beside the output; only a build whose numerics hold is
renamed into place. The verification compares the artifact, run through the common Session
interface, with the original model on ONNX Runtime (graph optimizations off) on fixed-seed inputs.
"""

from __future__ import annotations

import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import onnxsim

from deploycc import __version__
from deploycc.passes import resolve_passes
from deploycc.targets import Target, load_target
from deploycc.targets.backend import get_backend, require_available

from .artifact import staging_dir, write_manifest
from .errors import GateFailed, UserError
from .numerics import Tolerance, compare_all, random_feeds, run_reference, value_specs
from .passmanager import PassContext, run_passes
from .sources import load_source, model_sha256, preprocessing_of
from .stages import Stages


@dataclass
class BuildOptions:
    input_shape: object = None
    weights: str | None = None
    passes: list[str] | None = None       # None: the target's own list
    verify_passes: bool = True
    simplify: bool = True
    force: bool = False
    tune_trials: int = 0
    trials_per_task: int | None = None
    tuning_db: str | None = None
    threads: int = 0
    seed: int = 0
    extra: dict = field(default_factory=dict)


@dataclass
class BuildResult:
    out: Path
    target: Target
    manifest: dict
    times: dict
    ok: bool


def build(model: str, target_name: str, out: str | Path, options: BuildOptions | None = None,
          stages: Stages | None = None) -> BuildResult:
    options = options or BuildOptions()
    stages = stages or Stages()
    target = load_target(target_name)
    backend = get_backend(target.backend)
    require_available(backend)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="deploycc-") as scratch, staging_dir(out) as stage:
        with stages.step("load"):
            original, source = load_source(model, Path(scratch), options.input_shape, options.weights)
        with stages.step("simplify"):
            graph = simplify(original, source) if options.simplify else original
        with stages.step("passes"):
            graph, records = _run_target_passes(graph, target, options)
        with stages.step("compile"):
            backend.check_supported(graph, target)
            result = backend.compile(graph, target, stage, _compile_options(options))
        manifest = _manifest(original, source, target, backend, result, records, options)
        with stages.step("verify"):
            manifest["verification"] = _verify(original, backend, stage, manifest, target, options)
        manifest = write_manifest(stage, manifest)
        ok = manifest["verification"]["ok"]
        if not ok:
            raise GateFailed(_failure_line(manifest["verification"], target))
    return BuildResult(out, target, manifest, dict(stages.times), ok)


def simplify(model: onnx.ModelProto, source: Path) -> onnx.ModelProto:
    """onnxsim with BatchNorm fusion off, so that deploycc's own fold-bn pass sees every BN."""
    try:
        simplified, ok = onnxsim.simplify(model, skip_fuse_bn=True)
    except Exception as exc:
        raise UserError(f"{source}: onnxsim cannot simplify the model: {str(exc).splitlines()[0]}") from None
    return simplified if ok else model


def _run_target_passes(graph, target: Target, options: BuildOptions):
    names = list(target.passes) if options.passes is None else options.passes
    ctx = PassContext(target=target, force=options.force, options=options.extra)
    passes = [cls(ctx) for cls in resolve_passes(names)]
    return run_passes(graph, passes, verify=options.verify_passes, seed=options.seed)


def _compile_options(options: BuildOptions) -> dict:
    return {"tune_trials": options.tune_trials, "trials_per_task": options.trials_per_task,
            "tuning_db": options.tuning_db, **options.extra}


def _manifest(original, source, target, backend, result, records, options) -> dict:
    inits = {t.name for t in original.graph.initializer}
    inputs = value_specs([i for i in original.graph.input if i.name not in inits])
    return {
        "deploycc_version": __version__,
        "source": {"file": source.name, "sha256": model_sha256(original)},
        "target": target.to_dict(),
        "backend": backend.name,
        "backend_info": result.info,
        "toolchain": {**backend.versions(), "onnx": onnx.__version__, "python": platform.python_version()},
        "passes": [r.to_dict() | {"seconds": None} for r in records],
        "inputs": [s.to_dict() for s in inputs],
        "outputs": [s.to_dict() for s in value_specs(original.graph.output)],
        "preprocessing": preprocessing_of(original),
        "runtime": {"threads": options.threads},
        "remaining": result.remaining,
    }


def _verify(original, backend, stage: Path, manifest: dict, target: Target, options: BuildOptions) -> dict:
    tol = Tolerance(**{k: float(v) for k, v in target.verify.items() if k in ("atol_rel", "rtol", "min_cosine")})
    if manifest["remaining"]:
        return {"ok": True, "skipped": "the artifact's final step runs on the device; verify it there", "outputs": []}
    feeds = random_feeds(value_specs([i for i in original.graph.input
                                      if i.name not in {t.name for t in original.graph.initializer}]), options.seed)
    session = backend.load(stage, manifest)
    got = session.run(feeds)
    stats = compare_all([o.name for o in original.graph.output], run_reference(original, feeds), got, tol)
    return {"ok": all(s.ok for s in stats), "seed": options.seed, "tolerance": tol.__dict__,
            "reference": "onnxruntime, graph optimizations disabled, original model",
            "outputs": [s.to_dict() for s in stats]}


def _failure_line(verification: dict, target: Target) -> str:
    bad = [o for o in verification["outputs"] if not o["ok"]][0]
    return (f"numerical verification failed on target {target.name}: output {bad['output']!r} max abs error "
            f"{bad['max_abs']:.3g} > allowed {bad['allowed_abs']:.3g} (cosine {bad['cosine']:.6f})")
