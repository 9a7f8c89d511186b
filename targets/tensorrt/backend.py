"""TensorRT adapter: a device-ready bundle everywhere, the engine where TensorRT and a GPU exist.

A TensorRT engine is tied to the GPU and TensorRT version that built it, so a Jetson's engine is
built on the Jetson (docs/targets.md, "TensorRT on the Xavier"). ``compile`` therefore always
writes the bundle:

* ``model.onnx``: the optimized (and, for DLA targets, legalized) FP32 graph;
* ``calib.cache``: the Q/DQ model's activation scales as a TensorRT 8.5 calibration cache (implicit INT8);
* ``model.qdq.onnx``: the Q/DQ model, for TensorRT >= 10 (explicit INT8) and for verification here;
* ``legality.json``: per node, DLA or GPU fallback and the rule that decided it (DLA targets);
* the engine plan (flags, DLA core, FP16 layers) and the exact commands in the manifest.

Where ``import tensorrt`` works and a GPU is present, ``compile`` also builds ``model.engine``
(with ``timing.cache``) and the build verifies it through :class:`TRTSession`. Elsewhere the
manifest's ``remaining`` step says what is left and the command that finishes it on the device:
``deploycc build --resume BUNDLE``. ``proxy_session`` lets the build verify here what can be
verified: the INT8 numerics of the Q/DQ model (or the FP32 graph of an FP16 target) on ORT.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

from deploycc.core.errors import Unavailable
from deploycc.core.numerics import TensorSpec

from ..backend import FINISH, Backend, CompileResult, Proxy, host_session
from ..target import Target
from . import engine as trt_engine
from .trtexec import build_command

ENGINE = "model.engine"


class TensorRTBackend(Backend):
    name = "tensorrt"

    def available(self) -> str | None:
        return None  # the bundle is made anywhere; the engine step checks TensorRT itself

    def versions(self) -> dict:
        return {"tensorrt": trt_engine.trt_version() or "not installed (bundle only)"}

    def check_supported(self, model: onnx.ModelProto, target: Target) -> None:
        return None  # TensorRT's own parser decides on the device; the legality report covers DLA

    def compile(self, model: onnx.ModelProto, target: Target, workdir: Path, options: dict) -> CompileResult:
        settings = target.settings.get("tensorrt", {})
        # deploycc.quantize's result: a district above targets, so read by its fields, never imported
        quant: Any = options.get("quantization")
        files = ["model.onnx"]
        onnx.save(model, str(workdir / "model.onnx"))
        plan = trt_engine.EnginePlan(
            onnx="model.onnx",
            fp16=bool(settings.get("fp16", target.precision == "fp16")),
            dla_core=settings.get("dla_core"),
            gpu_fallback=bool(settings.get("gpu_fallback", True)),
            workspace_mib=int(settings.get("workspace_mib", 1024)),
        )
        info = {"tensorrt_version": settings.get("version", "8.5.2"), "device": settings.get("device", target.name)}
        if target.precision == "int8":
            files += self._int8_files(model, quant, target, workdir)
            plan.int8, plan.calib_cache = "implicit", "calib.cache"
            plan.fp16_layers = tuple(quant.info.get("excluded", ()))
        if target.legality.get("accelerator") not in (None, "GPU"):
            files.append(_write_legality(model, target, workdir))
        info["plan"] = plan.__dict__ | {"fp16_layers": list(plan.fp16_layers)}
        info["commands"] = _commands(plan, target, info["tensorrt_version"])
        files += _store_verification(model, quant, workdir)  # what the device verifies the engine with
        info["verify_files"] = {"inputs": "verify/input*.bin", "reference": "verify/reference.npz"}
        return self._finish(workdir, plan, info, files, options)

    def _int8_files(self, model, quant, target: Target, workdir: Path) -> list[str]:
        from deploycc.targets.tensorrt.calib_cache import cache_from_qdq

        if quant is None:
            raise Unavailable("an INT8 TensorRT target needs the quantize stage (calibration) first")
        settings = target.settings.get("tensorrt", {})
        text = cache_from_qdq(
            model, quant.qdq, settings.get("version", "8.5.2"), settings.get("calibrator", "EntropyCalibration2")
        )
        (workdir / "calib.cache").write_text(text)
        onnx.save(quant.qdq, str(workdir / "model.qdq.onnx"))
        return ["calib.cache", "model.qdq.onnx"]

    def _finish(self, workdir: Path, plan, info: dict, files: list[str], options: dict) -> CompileResult:
        reason = trt_engine.unavailable()
        bundle = options.get("artifact_path", "BUNDLE")
        if reason is None:
            plan = trt_engine.plan_for_installed(plan)
            info["engine_build"] = trt_engine.build_engine(workdir, plan, ENGINE)
            info["plan"] = plan.__dict__ | {"fp16_layers": list(plan.fp16_layers)}
            return CompileResult([*files, ENGINE, "timing.cache"], info)
        step = {
            "what": f"build the TensorRT engine on the {info['device']} (TensorRT {info['tensorrt_version']}); "
            f"not here: {reason}",
            "command": f"deploycc build --resume {bundle}",
            "trtexec": info["commands"]["trtexec"],
            "kind": FINISH,
        }
        return CompileResult(files, info, [step])

    def load(self, artifact_dir: Path, manifest: dict) -> trt_engine.TRTSession:
        if not (artifact_dir / ENGINE).is_file():
            raise Unavailable(
                f"artifact {artifact_dir} is a device bundle without a TensorRT engine yet; "
                f"finish it on the device with `deploycc build --resume {artifact_dir}`"
            )
        reason = trt_engine.unavailable()
        if reason:
            raise Unavailable(f"artifact {artifact_dir} holds a TensorRT engine and cannot run here: {reason}")
        specs_in = [TensorSpec.from_dict(d) for d in manifest["inputs"]]
        specs_out = [TensorSpec.from_dict(d) for d in manifest["outputs"]]
        return trt_engine.TRTSession(artifact_dir / ENGINE, specs_in, specs_out)

    def proxy_session(self, artifact_dir: Path, manifest: dict) -> Proxy:
        """What stands in for the engine here: the Q/DQ model (INT8) or the FP32 graph, on ORT.

        Optimizations on: ORT fuses the Q/DQ pairs into real INT8 kernels, an INT8 execution the
        build checks against the Q/DQ model's exact semantics (optimizations off). CPU-dependent:
        on an x86 CPU without VNNI, ORT's u8s8 kernels saturate int16 pair sums where TensorRT
        accumulates in int32, so the proxy runs ORT's exact u8u8 kernels instead
        (``session.x64quantprecision``, ``deploycc.targets.onnxruntime.int8_cpu``); on a VNNI CPU (unchecked on
        the AVX2 machine this was written on) it runs the default u8s8 ones. Either way
        ``model.qdq.onnx``, the device's model, keeps its 8-bit weights; the choice is recorded as
        ``verification.int8_kernels``.
        """
        qdq = artifact_dir / "model.qdq.onnx"
        if not qdq.is_file() and manifest["target"].get("precision") == "fp16":
            from ..fp16_sim import SUBJECT, fp16_proxy

            return fp16_proxy(
                artifact_dir / "model.onnx",
                SUBJECT.format(name="model.onnx", device="the TensorRT FP16 engine (built on the device)"),
                int(manifest.get("runtime", {}).get("threads", 0)),
            )
        path = qdq if qdq.is_file() else artifact_dir / "model.onnx"
        session = host_session(
            path, int(manifest.get("runtime", {}).get("threads", 0)), level="all", host_int8=qdq.is_file()
        )
        int8 = session.int8_kernels
        kernels = f", {int8['kernels']}: {int8['feature']}" if int8 else ""
        return Proxy(
            session,
            f"{path.name} on ONNX Runtime's INT8 kernels{kernels} (stands in for the TensorRT "
            f"engine until it is built on the device)",
        )


def _store_verification(model: onnx.ModelProto, quant, workdir: Path) -> list[str]:
    """The inputs the device verifies the engine on, and the outputs it must match, in the bundle:
    ``trtexec --loadInputs`` reads the raw inputs and the build compares its ``--exportOutput``
    with ``verify/reference.npz`` (the Q/DQ model's outputs for INT8, the FP32 graph's otherwise, on
    ONNX Runtime with optimizations off: the references the Python path uses too)."""
    import numpy as np

    from deploycc.core.loader import graph_inputs
    from deploycc.core.numerics import random_feeds, run_reference, value_specs

    from . import trtexec

    if quant is not None:
        feeds, reference = quant.verify_feeds[0], quant.qdq
    else:
        feeds, reference = random_feeds(value_specs(graph_inputs(model)), 0), model
    names = trtexec.write_inputs(workdir, feeds)
    outputs = run_reference(reference, feeds)
    arrays: dict[str, Any] = {o.name: v for o, v in zip(reference.graph.output, outputs)}
    np.savez(workdir / "verify" / "reference.npz", **arrays)
    return [*sorted(names.values()), "verify/reference.npz"]


def _write_legality(model: onnx.ModelProto, target: Target, workdir: Path) -> str:
    from deploycc.targets.placement import placements, summary

    items = placements(model, target.legality)
    data = {"target": target.name, "summary": summary(items, target.legality), "nodes": [p.to_dict() for p in items]}
    (workdir / "legality.json").write_text(json.dumps(data, indent=2) + "\n")
    return "legality.json"


def _commands(plan, target: Target, version: str) -> dict:
    """trtexec equivalents: TensorRT 8.5 (implicit INT8, DLA; the command ``build --resume`` runs
    when the bindings are absent) and TensorRT >= 10 (Q/DQ model)."""
    args = build_command(plan, Path("timing.cache"))
    out = {"trtexec": " ".join(args), "tensorrt_family": version}
    if plan.int8:
        out["trtexec_10"] = (
            "trtexec --onnx=model.qdq.onnx --stronglyTyped --saveEngine=model.engine --timingCacheFile=timing.cache"
        )
    return out
