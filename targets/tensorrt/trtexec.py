"""The TensorRT engine through ``trtexec`` (JetPack ships it), for when the Python bindings are absent.

JetPack 5's TensorRT Python bindings are built for its Python 3.8; deploycc runs on 3.11. So on
the Jetson ``deploycc build --resume BUNDLE`` drives ``trtexec`` instead of importing
``tensorrt`` when that import fails:

* build: ``--onnx`` the bundle's graph, ``--int8 --calib=calib.cache`` (TensorRT 8.5 implicit INT8
  from deploycc's calibration cache) or ``--fp16``, ``--useDLACore=N --allowGPUFallback``, the
  FP16-kept layers as ``--precisionConstraints=obey --layerPrecisions``, the shared timing cache
  (``--timingCacheFile``, keyed by TensorRT version and device, ``trt_engine.timing_cache_path``),
  ``--saveEngine``, and the engine's layers and per-layer times (``--profilingVerbosity=detailed
  --exportLayerInfo --exportProfile --separateProfileRun``);
* verify: ``--loadEngine`` with the bundle's stored inputs (``--loadInputs=name:file``, raw
  little-endian float32) and ``--exportOutput``; the outputs (trtexec's JSON: ``name``,
  ``dimensions`` "1x19x64x128", ``values``) are compared with the reference outputs the bundle
  stores (``verify/reference.npz``), with the target's tolerance.

The command lines are built and tested here; running them needs TensorRT and the device, so the
run itself is unchecked on this machine (and says so in one sentence when trtexec is missing).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from deploycc.core.errors import Unavailable, UserError

JETPACK_TRTEXEC = Path("/usr/src/tensorrt/bin/trtexec")
LAYER_INFO, PROFILE, OUTPUTS = "engine.layers.json", "engine.profile.json", "verify/engine.outputs.json"


def find_trtexec() -> str | None:
    """trtexec on PATH, or where JetPack installs it."""
    found = shutil.which("trtexec")
    if found:
        return found
    return str(JETPACK_TRTEXEC) if JETPACK_TRTEXEC.is_file() else None


def build_command(plan, timing_cache: Path, engine: str = "model.engine", trtexec: str = "trtexec") -> list[str]:
    """The engine build of ``plan`` (``trt_engine.EnginePlan``), run in the bundle folder."""
    args = [
        trtexec,
        f"--onnx={plan.onnx}",
        f"--saveEngine={engine}",
        f"--timingCacheFile={timing_cache}",
        f"--memPoolSize=workspace:{int(plan.workspace_mib)}",
    ]
    if plan.fp16 or plan.fp16_layers:
        args.append("--fp16")
    if plan.int8 == "implicit":
        args += ["--int8", f"--calib={plan.calib_cache}"]
    elif plan.int8 == "explicit":
        args.append("--int8")  # the Q/DQ model carries its scales
    if plan.dla_core is not None:
        args.append(f"--useDLACore={int(plan.dla_core)}")
        if plan.gpu_fallback:
            args.append("--allowGPUFallback")
    if plan.fp16_layers:
        args += [
            "--precisionConstraints=obey",
            "--layerPrecisions=" + ",".join(f"{name}:fp16" for name in plan.fp16_layers),
        ]
    args += [
        "--profilingVerbosity=detailed",
        f"--exportLayerInfo={LAYER_INFO}",
        f"--exportProfile={PROFILE}",
        "--separateProfileRun",
    ]
    return args


def verify_command(
    input_files: dict[str, str], engine: str = "model.engine", trtexec: str = "trtexec", dla_core: int | None = None
) -> list[str]:
    """One inference of the engine on stored inputs, its outputs exported as JSON."""
    args = [
        trtexec,
        f"--loadEngine={engine}",
        "--loadInputs=" + ",".join(f"{name}:{path}" for name, path in input_files.items()),
        f"--exportOutput={OUTPUTS}",
        "--iterations=1",
        "--warmUp=0",
        "--duration=0",
    ]
    if dla_core is not None:
        args.append(f"--useDLACore={int(dla_core)}")
    return args


def write_inputs(folder: Path, feeds: dict[str, np.ndarray]) -> dict[str, str]:
    """Each input as the raw file ``--loadInputs`` reads (C order, float32); name -> relative path."""
    (folder / "verify").mkdir(parents=True, exist_ok=True)
    out = {}
    for i, (name, value) in enumerate(feeds.items()):
        rel = f"verify/input{i}.bin"
        np.ascontiguousarray(value, dtype=np.float32).tofile(folder / rel)
        out[name] = rel
    return out


def read_outputs(path: Path) -> dict[str, np.ndarray]:
    """trtexec's ``--exportOutput`` JSON as arrays (it writes ``inf``/``nan`` bare: made JSON first)."""
    text = re.sub(
        r"(?<![\w\"])(-?)(inf|nan)(?![\w\"])",
        lambda m: f'"{m.group(1)}{m.group(2)}"',
        path.read_text(),
        flags=re.IGNORECASE,
    )
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not trtexec's --exportOutput JSON ({exc})") from None
    out = {}
    for item in items:
        dims = [int(d) for d in str(item["dimensions"]).split("x") if d]
        values = np.array([float(v) for v in item["values"]], dtype=np.float32)
        if values.size != int(np.prod(dims)):
            raise UserError(
                f"{path}: output {item['name']!r} has {values.size} values for dimensions {item['dimensions']}"
            )
        out[item["name"]] = values.reshape(dims)
    return out


def run(args: list[str], folder: Path, what: str, timeout: float = 3600.0) -> str:
    """Run one trtexec command in ``folder``; a failure is one line with the tail of its log."""
    if find_trtexec() is None:
        raise Unavailable(
            "trtexec is not installed here (JetPack: /usr/src/tensorrt/bin/trtexec); the engine is built on the device"
        )
    proc = subprocess.run(args, cwd=folder, capture_output=True, text=True, timeout=timeout)
    (folder / f"trtexec.{what}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise UserError(f"trtexec {what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout
