"""Android NNAPI adapter (phone NPUs such as the Kirin 970's): the model for ONNX Runtime Mobile.

The artifact is the optimized ONNX graph (``model.onnx``) plus the NNAPI execution-provider flags
from the target file and the legality report (``legality.json``: which nodes the NPU takes and
which fall back to the CPU, and why). ONNX Runtime's NNAPI execution provider exists only in its
Android builds, so the model runs on the phone; here, the build verifies the graph on ONNX Runtime
(CPU, FP32) through ``proxy_session`` and the manifest states the step left for the phone.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnxruntime as ort

from deploycc.core.errors import Unavailable

from ..backend import RUN, Backend, CompileResult, Proxy, Session, device_step, host_session
from ..target import Target

PROVIDER = "NnapiExecutionProvider"


class NNAPIBackend(Backend):
    name = "nnapi"

    def available(self) -> str | None:
        return None  # the artifact is made anywhere; running it needs the phone

    def versions(self) -> dict:
        return {"onnxruntime": ort.__version__}

    def check_supported(self, model: onnx.ModelProto, target: Target) -> None:
        return None  # unsupported ops fall back to the CPU; the legality report names them

    def compile(self, model: onnx.ModelProto, target: Target, workdir: Path, options: dict) -> CompileResult:
        from deploycc.targets.placement import placements, summary

        onnx.save(model, str(workdir / "model.onnx"))
        items = placements(model, target.legality)
        report = {
            "target": target.name,
            "summary": summary(items, target.legality),
            "nodes": [p.to_dict() for p in items],
        }
        (workdir / "legality.json").write_text(json.dumps(report, indent=2) + "\n")
        flags = list(target.settings.get("device", {}).get("flags", []))
        info = {"execution_provider": PROVIDER, "nnapi_flags": flags, "placement": report["summary"]}
        step = device_step(
            f"run on the phone with ONNX Runtime for Android and the {PROVIDER} ({', '.join(flags) or 'no flags'})",
            f"adb push {options.get('artifact_path', 'ARTIFACT')}/model.onnx /data/local/tmp/ && "
            "onnxruntime_perf_test -e nnapi /data/local/tmp/model.onnx",
            RUN,
        )
        return CompileResult(["model.onnx", "legality.json"], info, [step])

    def load(self, artifact_dir: Path, manifest: dict) -> Session:
        if PROVIDER not in ort.get_available_providers():
            raise Unavailable(
                f"artifact {artifact_dir} runs on Android NNAPI; this ONNX Runtime has no {PROVIDER} "
                "(only its Android builds do): run it on the phone"
            )
        return host_session(artifact_dir / "model.onnx", int(manifest.get("runtime", {}).get("threads", 0)))

    def proxy_session(self, artifact_dir: Path, manifest: dict) -> Proxy:
        if manifest["target"].get("precision") == "fp16":
            from ..fp16_sim import SUBJECT, fp16_proxy

            return fp16_proxy(
                artifact_dir / "model.onnx", SUBJECT.format(name="model.onnx", device="the phone's NNAPI FP16 run")
            )
        return Proxy(
            host_session(artifact_dir / "model.onnx"),
            "model.onnx on ONNX Runtime CPU, FP32 (the phone runs it through NNAPI)",
        )
