"""``deploycc build --resume BUNDLE``: finish a device bundle on the device itself.

A TensorRT bundle made on a build machine (``model.onnx``, ``calib.cache``, ``model.qdq.onnx``,
the engine plan in its manifest) is completed where TensorRT and the GPU are: the engine is built
from the recorded plan with a persistent timing cache, run through the common Session interface,
and verified against the bundle's FP32 graph on the held-out inputs the manifest describes
(regenerated: synthetic ones by seed, or the same images when the folder exists there). The
finished artifact replaces the bundle atomically; a failure leaves the bundle as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from deploycc.build.artifact import read_manifest, staging_dir, write_manifest
from deploycc.build.stages import Stages
from deploycc.core.errors import GateFailed, UserError
from deploycc.core.loader import graph_inputs
from deploycc.core.numerics import Tolerance, compare_all, random_feeds, run_reference, value_specs
from deploycc.quantize.calibration import calibration_set
from deploycc.targets.backend import get_backend


def resume(bundle: str | Path, stages: Stages | None = None) -> dict:
    """Build the engine of ``bundle`` here, verify it, and return the finished manifest."""
    from deploycc.targets import trt_engine
    stages = stages or Stages()
    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    if manifest.get("backend") != "tensorrt" or not manifest.get("remaining"):
        raise UserError(f"{bundle}: not an unfinished TensorRT bundle (nothing remains to be done on a device)")
    trt_engine.require()
    plan = trt_engine.plan_for_installed(trt_engine.EnginePlan.from_dict(manifest["backend_info"]["plan"]))
    with staging_dir(bundle) as stage:
        shutil.copytree(bundle, stage, dirs_exist_ok=True)
        (stage / "manifest.json").unlink()
        with stages.step("engine"):
            facts = trt_engine.build_engine(stage, plan)
        manifest = {k: v for k, v in manifest.items() if k not in ("schema", "files")}
        manifest["backend_info"] = {**manifest["backend_info"], "engine_build": facts, "plan": plan.__dict__ |
                                    {"fp16_layers": list(plan.fp16_layers)}}
        manifest["remaining"] = []
        with stages.step("verify"):
            manifest["verification"] = _verify(stage, manifest)
        manifest = write_manifest(stage, manifest)
        if not manifest["verification"]["ok"]:
            raise GateFailed(f"{bundle}: the TensorRT engine's numerics do not hold against the bundle's FP32 graph")
    return manifest


def _verify(stage: Path, manifest: dict) -> dict:
    qdq = stage / "model.qdq.onnx"
    # INT8: the engine against its Q/DQ model's exact semantics, as the build checked ORT's INT8 run.
    reference = onnx.load(str(qdq if qdq.is_file() else stage / "model.onnx"))
    tol = Tolerance.of(manifest["target"].get("verify", {}))
    feed_sets, inputs = _feeds(reference, manifest)
    session = get_backend("tensorrt").load(stage, manifest)
    names = [o.name for o in reference.graph.output]
    stats = [s for f in feed_sets for s in compare_all(names, run_reference(reference, f), session.run(f), tol)]
    return {"ok": all(s.ok for s in stats), "tolerance": tol.__dict__, "inputs": inputs,
            "subject": "model.engine (TensorRT)",
            "reference": f"the bundle's {'model.qdq.onnx' if qdq.is_file() else 'model.onnx'} on ONNX Runtime (optimizations off)",
            "outputs": [s.to_dict() for s in stats]}


def _feeds(reference: onnx.ModelProto, manifest: dict) -> tuple[list[dict], str]:
    specs = value_specs(graph_inputs(reference))
    quant = manifest.get("quantization")
    if not quant:
        return [random_feeds(specs, 0)], "standard normal, seed 0"
    calib = quant["calibration"]
    folder = calib["source"] if Path(calib["source"]).is_dir() else None
    held = calibration_set(specs[0].name, specs[0].shape, calib.get("preprocessing"), folder, 2, seed=1,
                           offset=int(calib["images"]))
    return held.feeds(), held.source
