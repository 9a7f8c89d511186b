"""``deploycc build --resume BUNDLE``: finish a device bundle on the device itself.

A TensorRT bundle made on a build machine (``model.onnx``, ``calib.cache``, ``model.qdq.onnx``,
the engine plan in its manifest) is completed where TensorRT and the GPU are: the engine is built
from the recorded plan with a persistent timing cache, run through the common Session interface,
and verified against the bundle's FP32 graph on the held-out inputs the manifest describes
(regenerated: synthetic ones by seed, or the same images when the folder exists there). Where
TensorRT's Python bindings do not import (JetPack 5 builds them for its Python 3.8), ``trtexec``
builds the engine (``deploycc.targets.tensorrt.trtexec``) and runs it on the inputs stored in the bundle,
against the reference outputs stored beside them. The
finished artifact replaces the bundle atomically; a failure leaves the bundle as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from deploycc.core.errors import GateFailed, Unavailable, UserError
from deploycc.core.loader import graph_inputs
from deploycc.core.numerics import Tolerance, compare_all, random_feeds, run_reference, value_specs
from deploycc.pipeline.artifact import read_manifest, staging_dir, write_manifest
from deploycc.pipeline.stages import Stages
from deploycc.quantize.calibration import calibration_set
from deploycc.targets.backend import get_backend


def resume(bundle: str | Path, stages: Stages | None = None) -> dict:
    """Build the engine of ``bundle`` here, verify it, and return the finished manifest."""
    from deploycc.targets.tensorrt import engine as trt_engine

    stages = stages or Stages()
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    if manifest.get("backend") != "tensorrt" or not manifest.get("remaining"):
        raise UserError(f"{bundle}: not an unfinished TensorRT bundle (nothing remains to be done on a device)")
    use_trtexec = _use_trtexec(bundle)
    plan = trt_engine.EnginePlan.from_dict(manifest["backend_info"]["plan"])
    if not use_trtexec:
        plan = trt_engine.plan_for_installed(plan)
    with staging_dir(bundle) as stage:
        shutil.copytree(bundle, stage, dirs_exist_ok=True)
        (stage / "manifest.json").unlink()
        with stages.step("engine"):
            facts = _trtexec_build(stage, plan, manifest) if use_trtexec else trt_engine.build_engine(stage, plan)
        manifest = {k: v for k, v in manifest.items() if k not in ("schema", "files")}
        manifest["backend_info"] = {
            **manifest["backend_info"],
            "engine_build": facts,
            "plan": plan.__dict__ | {"fp16_layers": list(plan.fp16_layers)},
        }
        manifest["remaining"] = []
        with stages.step("verify"):
            manifest["verification"] = _verify_trtexec(stage, manifest) if use_trtexec else _verify(stage, manifest)
        manifest = write_manifest(stage, manifest)
        if not manifest["verification"]["ok"]:
            raise GateFailed(f"{bundle}: the TensorRT engine's numerics do not hold against the bundle's FP32 graph")
    return manifest


def _use_trtexec(bundle: Path) -> bool:
    """The Python bindings where they work; else trtexec (JetPack's, for its own Python); else one line."""
    from deploycc.targets.tensorrt import engine as trt_engine
    from deploycc.targets.tensorrt import trtexec

    reason = trt_engine.unavailable()
    if reason is None:
        return False
    if trtexec.find_trtexec() is None:
        raise Unavailable(
            f"{bundle}: cannot build the TensorRT engine here: {reason}, and trtexec is not installed "
            f"(JetPack: {trtexec.JETPACK_TRTEXEC})"
        )
    return True


def _trtexec_build(stage: Path, plan, manifest: dict) -> dict:
    """The engine built by trtexec, with the timing cache shared across builds on this device."""
    from deploycc.targets.tensorrt import engine as trt_engine
    from deploycc.targets.tensorrt import trtexec

    version = manifest["backend_info"].get("tensorrt_version", "unknown")
    device = _device_model() or manifest["backend_info"].get("device", "unknown")
    cache = trt_engine.timing_cache_path(f"trtexec-{version}", device, "trtexec")
    cache.parent.mkdir(parents=True, exist_ok=True)
    # _use_trtexec found it; trtexec.run refuses in one line should it be gone since
    args = trtexec.build_command(plan, cache, trtexec=trtexec.find_trtexec() or "trtexec")
    log = trtexec.run(args, stage, "build")
    banner = next((line for line in log.splitlines() if "TensorRT v" in line), "")
    return {
        "tool": "trtexec",
        "command": " ".join(args),
        "tensorrt": banner.strip() or version,
        "gpu": device,
        "engine": "model.engine",
        "shared_timing_cache": str(cache),
        "layer_info": trtexec.LAYER_INFO,
        "profile": trtexec.PROFILE,
    }


def _device_model() -> str | None:
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ") or None
    except OSError:
        return None


def _verify_trtexec(stage: Path, manifest: dict) -> dict:
    """The engine run by trtexec on the bundle's stored inputs, against its stored reference outputs."""
    import numpy as np

    from deploycc.targets.tensorrt import trtexec

    inputs = {spec["name"]: f"verify/input{i}.bin" for i, spec in enumerate(manifest["inputs"])}
    missing = [p for p in [*inputs.values(), "verify/reference.npz"] if not (stage / p).is_file()]
    if missing:
        raise UserError(f"the bundle lacks {missing[0]} (made by an older deploycc): rebuild the bundle")
    plan = manifest["backend_info"]["plan"]
    trtexec.run(
        trtexec.verify_command(inputs, trtexec=trtexec.find_trtexec() or "trtexec", dla_core=plan.get("dla_core")),
        stage,
        "verify",
    )
    got = trtexec.read_outputs(stage / trtexec.OUTPUTS)
    reference = np.load(stage / "verify" / "reference.npz")
    names = [o["name"] for o in manifest["outputs"]]
    absent = [n for n in names if n not in got]
    if absent:
        raise UserError(f"trtexec --exportOutput has no output {absent[0]!r} (it has {sorted(got)})")
    tol = Tolerance.of(manifest["target"].get("verify", {}))
    stats = compare_all(names, [reference[n] for n in names], [got[n] for n in names], tol)
    ok = all(s.ok for s in stats)
    return {
        "status": "passed" if ok else "failed",
        "ok": ok,
        "tolerance": tol.__dict__,
        "inputs": "the bundle's verify/input*.bin",
        "subject": "model.engine (TensorRT, run by trtexec)",
        "reference": "the bundle's verify/reference.npz",
        "outputs": [s.to_dict() for s in stats],
    }


def _verify(stage: Path, manifest: dict) -> dict:
    qdq = stage / "model.qdq.onnx"
    # INT8: the engine against its Q/DQ model's exact semantics, as the build checked ORT's INT8 run.
    reference = onnx.load(str(qdq if qdq.is_file() else stage / "model.onnx"))
    tol = Tolerance.of(manifest["target"].get("verify", {}))
    feed_sets, inputs = _feeds(reference, manifest)
    session = get_backend("tensorrt").load(stage, manifest)
    names = [o.name for o in reference.graph.output]
    stats = [s for f in feed_sets for s in compare_all(names, run_reference(reference, f), session.run(f), tol)]
    ok = all(s.ok for s in stats)
    return {
        "status": "passed" if ok else "failed",
        "ok": ok,
        "tolerance": tol.__dict__,
        "inputs": inputs,
        "subject": "model.engine (TensorRT)",
        "reference": f"the bundle's {'model.qdq.onnx' if qdq.is_file() else 'model.onnx'} "
        "on ONNX Runtime (optimizations off)",
        "outputs": [s.to_dict() for s in stats],
    }


def _feeds(reference: onnx.ModelProto, manifest: dict) -> tuple[list[dict], str]:
    specs = value_specs(graph_inputs(reference))
    quant = manifest.get("quantization")
    if not quant:
        return [random_feeds(specs, 0)], "standard normal, seed 0"
    calib = quant["calibration"]
    folder = calib["source"] if Path(calib["source"]).is_dir() else None
    held = calibration_set(
        specs[0].name, specs[0].shape, calib.get("preprocessing"), folder, 2, seed=1, offset=int(calib["images"])
    )
    return held.feeds(), held.source
