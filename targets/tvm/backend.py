"""Apache TVM (Relax) adapter: ONNX -> Relax -> LLVM or CUDA code -> one shared library.

Flow: ``relax.frontend.onnx.from_onnx`` (weights baked in), then either the default build or,
when a MetaSchedule tuning database is given or tuning is asked for, the ``static_shape_tuning``
pipeline (``total_trials=0`` only applies the database). The database is keyed by workload, so
the units a search space repeats are tuned once and reused by every later build that has them.
GPU targets (CUDA, OpenCL) get TVM's default GPU pipeline with deploycc's dlight rule list
(``gpu_schedules``); CPU targets get deploycc's default CPU schedules (``cpu_schedules``) for
every PrimFunc no tuning record covers. ``export_library`` uses the target's cross
compiler (``cc``) when the host is not this machine.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np
import onnx

from deploycc.core.cache import cache_home, sha256_file
from deploycc.core.errors import Unavailable, UserError
from deploycc.core.native_log import native_stderr_into
from deploycc.core.numerics import TensorSpec

from ..backend import RUN, Backend, CompileResult, Session, device_step
from ..target import Target
from . import blocked_layout
from . import fusion as tvm_fusion
from . import tuning as tvm_tuning
from .precision import apply_precision
from .threads import size_thread_pool


class TVMBackend(Backend):
    name = "tvm"

    def available(self) -> str | None:
        try:
            import tvm  # noqa: F401
        except Exception as exc:  # pragma: no cover - depends on the installation
            return f"apache-tvm does not import ({exc})"
        return None

    def versions(self) -> dict:
        import tvm
        import tvm_ffi

        return {"apache-tvm": tvm.__version__, "apache-tvm-ffi": getattr(tvm_ffi, "__version__", "?")}

    def check_supported(self, model: onnx.ModelProto, target: Target) -> None:
        from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

        blocked_layout.layout_setting(target.settings.get("tvm", {}), target.name)
        known = _get_convert_map()
        from .support import refusal, shapes_of

        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        shapes = None
        for node in model.graph.node:
            where = (
                f"node {node.name or node.output[0]!r} (op {node.domain + '::' if node.domain else ''}{node.op_type})"
            )
            if node.domain not in ("", "ai.onnx") or node.op_type not in known:
                raise UserError(
                    f"{where} cannot be compiled by TVM {self.versions()['apache-tvm']}: no converter for this op"
                )
            if node.op_type == "Resize":
                shapes = shapes if shapes is not None else shapes_of(model)
                why = refusal(node, model, opset, shapes)
                if why:
                    raise UserError(f"{where} cannot be compiled by TVM {self.versions()['apache-tvm']}: {why}")

    def compile(self, model: onnx.ModelProto, target: Target, workdir: Path, options: dict) -> CompileResult:
        """Compile ``model``; TVM's own log lines (its C++ LOG, on descriptor 2) go to the result's
        log, which the build log carries, not to the user's console."""
        log: list[str] = []
        with native_stderr_into(log):
            result = self._compile(model, target, workdir, options)
        result.log = log
        return result

    def _compile(self, model: onnx.ModelProto, target: Target, workdir: Path, options: dict) -> CompileResult:
        size_thread_pool()  # before any TVM code runs here: the numerics check, tuning's measurements
        import tvm
        from tvm import relax

        tvm_target, triple = resolve_target(target)
        onchip = _cpu_facts(target, tvm_target).onchip_bytes if tvm_target.kind.name == "llvm" else None
        tiling = target.settings.get("tvm", {}).get("fusion_tiling", False)
        mod, fusion = tvm_fusion.import_onnx(model, tiling, onchip)
        mod, precision = apply_precision(mod, target, tvm_target)
        mod, layout = _apply_layout(mod, target, tvm_target, tiling, len(fusion.groups))
        db = tuning_database(target, tvm_target, options)
        tuned = None
        with tvm.target.Target(tvm_target):
            if db is not None and tvm_target.kind.name == "llvm" and not fusion.groups:
                mod, tuned = tvm_tuning.tune_and_apply(
                    mod,
                    tvm_target,
                    _cpu_facts(target, tvm_target),
                    db,
                    int(options.get("tune_trials", 0)),
                    options.get("trials_per_task"),
                    _tuning_device(target, options),
                )
            elif db is not None:
                mod = relax.get_pipeline(
                    "static_shape_tuning",
                    total_trials=int(options.get("tune_trials", 0)),
                    target=tvm_target,
                    work_dir=str(db),
                    max_trials_per_task=options.get("trials_per_task"),
                )(mod)
        schedules: dict = {}
        # fuse=True: TVM's FuseOps runs around the fuse plan's groups, which are opaque to it
        pipeline = _pipeline(target, tvm_target, schedules, True, precision.get("compute") == "float16")
        ex = tvm_fusion.build(mod, tvm_target, fusion, pipeline)
        cc = target.settings.get("tvm", {}).get("cc")
        _export(ex, workdir / "model.so", cc)
        files, kernels = ["model.so"], None
        if tvm_target.kind.name == "cuda":  # ship the kernels precompiled for the target GPU
            from .cuda import precompile

            extra, kernels = precompile(ex, str(tvm_target.attrs["arch"]), workdir)
            files += extra
        info = {
            "target": str(tvm_target),
            "host_triple": triple,
            "cc": cc or "default",
            "tuning_database": _database_facts(db),
            "tune_trials": int(options.get("tune_trials", 0)),
            "fusion": fusion.summary(),
            "precision": precision,
        }
        if layout is not None:  # a blocked layout: which ops run in it (NCHW builds' manifests unchanged)
            info["layout"] = layout
        if tuned is not None:
            info["tuning_space"] = {"space": "deploycc CPU rules (register tiles)", **tuned}
        if options.get("tuning_database_note"):
            info["tuning_database_note"] = options["tuning_database_note"]
        if schedules:  # which kernels came from the tuning database, the default rules, or neither
            info["schedules"] = {k: len(v) for k, v in schedules.items()} | {
                "unscheduled_functions": schedules["unscheduled"]
            }
        if kernels is not None:
            info["cuda_kernels"] = kernels
        return CompileResult(files, info, _device_steps(target, triple, tvm_target, options))

    def load(self, artifact_dir: Path, manifest: dict) -> TVMSession:
        size_thread_pool()
        info = manifest.get("backend_info", {})
        triple = info.get("host_triple") or ""
        if triple and not triple.startswith(platform.machine()):
            raise Unavailable(
                f"artifact {artifact_dir} is built for {triple} and cannot run on this "
                f"{platform.machine()} machine; run it on the device (or with --remote)"
            )
        if "cuda" in info.get("target", "") and not _has_cuda():
            raise Unavailable(f"artifact {artifact_dir} is CUDA code and this machine has no NVIDIA GPU")
        specs_in = [TensorSpec.from_dict(d) for d in manifest["inputs"]]
        specs_out = [TensorSpec.from_dict(d) for d in manifest["outputs"]]
        if "cuda_kernels" in info:
            from .cuda import install_kernel_cache

            install_kernel_cache(artifact_dir, info["cuda_kernels"])
        return TVMSession(artifact_dir / "model.so", specs_in, specs_out, "cuda" in info.get("target", ""))


class TVMSession(Session):
    def __init__(self, path: Path, inputs, outputs, cuda: bool = False):
        import tvm
        from tvm import relax

        self.inputs, self.outputs = inputs, outputs
        self._dev = tvm.cuda() if cuda else tvm.cpu()
        self._vm = relax.VirtualMachine(tvm.runtime.load_module(str(path)), self._dev)

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        import tvm

        args = [tvm.runtime.tensor(a, self._dev) for a in arrays]
        out = self._vm["main"](*args)
        items = list(out) if not hasattr(out, "numpy") else [out]
        return [o.numpy() for o in items]

    def timed_runner(self, feeds: dict[str, np.ndarray]):
        """The VM call on inputs already in TVM tensors, its outputs left there (synchronised on a
        GPU). ``run`` copies the inputs into fresh tensors and every output into a fresh numpy
        array on each call: for mac_small at 1024x2048 that is 25 MB in and 159 MB out, about
        6,700 page faults and 78 ms of kernel time per run, 286 against 248 ms timed in
        alternation here; ONNX Runtime's run (outputs handed over without a copy) pays neither."""
        import tvm

        args = [tvm.runtime.tensor(a, self._dev) for a in self.ordered_feeds(feeds)]
        main, dev = self._vm["main"], self._dev

        def run():
            main(*args)
            dev.sync()

        return run


def _device_steps(target: Target, triple: str, tvm_target, options: dict) -> list[dict]:
    """What must happen elsewhere: a cross-compiled or CUDA library is verified on its device."""
    if not runs_elsewhere(target):
        return []
    where = f"{triple}" + (
        f" with an NVIDIA GPU ({tvm_target.attrs.get('arch', 'cuda')})" if tvm_target.kind.name == "cuda" else ""
    )
    artifact = options.get("artifact_path") or "ARTIFACT"
    return [
        device_step(
            f"run and time it on the device ({where}); this machine cannot execute it",
            f"deploycc verify {artifact} --reference MODEL --remote TRACKER --key KEY",
            RUN,
        )
    ]


def resolve_target(target: Target):
    """The TVM target for ``target`` with ``mcpu = "host"`` resolved, and its host triple."""
    import tvm

    spec = dict(target.settings.get("tvm", {}).get("target", {"kind": "llvm", "mcpu": "host"}))
    if spec.get("mcpu") == "host":
        spec["mcpu"] = tvm.target.codegen.llvm_get_system_cpu()
    if "num-cores" in spec or "num_cores" in spec:
        spec["num-cores"] = int(spec.pop("num_cores", spec.get("num-cores")))
    host = target.settings.get("tvm", {}).get("host")
    if host:
        spec["host"] = dict(host)
    try:
        tvm_target = tvm.target.Target(spec)
    except Exception as exc:
        raise UserError(f"target {target.name}: invalid TVM target {spec}: {exc}") from None
    return tvm_target, host_triple(target)


def host_triple(target: Target) -> str:
    """The triple of the CPU that runs ``target``'s host code (its ``tvm.host``, else its own)."""
    settings = target.settings.get("tvm", {})
    return (settings.get("host") or settings.get("target") or {}).get("mtriple") or f"{platform.machine()}-linux-gnu"


def runs_elsewhere(target: Target) -> bool:
    """Whether ``target``'s code cannot run on this machine: built for another CPU, or CUDA code
    where there is no NVIDIA GPU (then it is verified and timed on the device)."""
    kind = target.settings.get("tvm", {}).get("target", {}).get("kind", "llvm")
    return not host_triple(target).startswith(platform.machine()) or (kind == "cuda" and not _has_cuda())


def _database_facts(db: Path | None) -> dict | None:
    """What the manifest says of the tuning database: its folder's name and the sha256 of its
    records, never its path (the cache's place differs between machines; the bytes must not)."""
    if db is None:
        return None
    records = db / tvm_tuning.RECORDS
    return {"name": db.name, "records_sha256": sha256_file(records) if records.is_file() else None}


def tuning_database(target: Target, tvm_target, options: dict) -> Path | None:
    """The MetaSchedule work dir to tune into or apply, or None for a plain untuned build."""
    given = options.get("tuning_db")
    trials = int(options.get("tune_trials", 0))
    if given:
        path = Path(given)
    else:
        path = cache_home() / "tvm-tuning" / target_key(tvm_target)
        if not (path / tvm_tuning.RECORDS).exists():
            shipped = tvm_tuning.shipped_for(target_key(tvm_target))
            if shipped is not None and trials <= 0:
                return shipped  # the repository's database for exactly this CPU and target, applied as is
            if shipped is not None:
                tvm_tuning.seed_from(shipped, path)
    note = tvm_tuning.checked(path) if path.is_dir() else None
    if note:
        options["tuning_database_note"] = note
    if trials <= 0 and not (path / tvm_tuning.RECORDS).exists():
        return None
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tuning_device(target: Target, options: dict) -> dict | None:
    """Where tuning measures: the fleet's devices (``--remote``/``--key``), else None (here)."""
    if not options.get("tune_remote"):
        return None
    return {
        "remote": options["tune_remote"],
        "key": options["tune_key"],
        "cc": target.settings.get("tvm", {}).get("cc"),
    }


def target_key(tvm_target) -> str:
    import hashlib

    return hashlib.sha256(str(tvm_target).encode()).hexdigest()[:16]


def _apply_layout(mod, target: Target, tvm_target, tiling: bool, groups: int):
    """(module, facts for the manifest): the target's ``[tvm] layout`` applied (``blocked_layout``)."""
    layout = blocked_layout.layout_setting(target.settings.get("tvm", {}), target.name)
    blocked_layout.check_applies(layout, target.name, tvm_target, tiling, groups)
    if layout == "NCHW":
        return mod, None
    lanes = _cpu_facts(target, tvm_target).lanes
    mod, counts = blocked_layout.to_blocked(mod, lanes)
    return mod, {"layout": f"NCHW{lanes}c", "ops": counts}


def _cpu_facts(target: Target, tvm_target):
    from .cpu_schedules import CPUFacts

    return CPUFacts.of(tvm_target, target.onchip_memory())


def _pipeline(target: Target, tvm_target, report: dict, fuse: bool, float16: bool):
    """The Relax pipeline: deploycc's default CPU schedules for a CPU, deploycc's GPU schedules
    (``gpu_schedules``) for a GPU, else None (TVM's default)."""
    if "gpu" in tvm_target.keys:
        from . import gpu_schedules

        return gpu_schedules.pipeline(tvm_target, tensor_cores=float16)
    if tvm_target.kind.name != "llvm":
        return None
    from .cpu_schedules import pipeline

    return pipeline(tvm_target, _cpu_facts(target, tvm_target), report, fuse)


def _export(ex, path: Path, cc: str | None) -> None:
    if not cc:
        ex.export_library(str(path))
        return
    import shutil

    from tvm.support import cc as tvm_cc

    if shutil.which(cc) is None:
        package = "gcc-" + cc.removesuffix("-gcc") if cc.endswith("-gcc") else cc
        raise Unavailable(f"cross compiler {cc} is not installed (Debian: apt-get install {package})")
    ex.export_library(str(path), fcompile=tvm_cc.cross_compiler(cc))


def _has_cuda() -> bool:
    try:
        import tvm

        return bool(tvm.cuda().exist)
    except Exception:
        return False
