"""ONNX Runtime adapter: the artifact is the model as ONNX Runtime optimizes it for this CPU.

``compile`` runs ORT with the target's graph optimization level and saves the optimized graph
(``optimized_model_filepath``); loading it back needs no further optimization work. ORT's saved
optimized model can contain layout-specific contrib ops (NCHWc), which is why this artifact is
tied to the CPU family it was built on (recorded in the manifest).

INT8 (a Q/DQ model): where this CPU's u8s8 kernels saturate (x86 without VNNI, see
``deploycc.targets.onnxruntime.int8_cpu``) the model is optimized with ``session.x64quantprecision=1``, so the
saved artifact holds u8 weights and runs ORT's exact u8u8 kernels wherever it is loaded; on a VNNI
CPU (unchecked on the AVX2-only machine this was written on) it keeps the s8 weights and u8s8
kernels, and ``load`` refuses it on a CPU without VNNI. The choice and the CPU feature that made it
are ``backend_info.int8_kernels`` in the manifest.
"""

from __future__ import annotations

import errno
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from deploycc.core.errors import UserError, first_line
from deploycc.core.loader import graph_inputs
from deploycc.core.numerics import value_specs

from ..backend import Backend, CompileResult, Session
from ..target import Target
from . import int8_cpu

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class ORTBackend(Backend):
    name = "ort"

    def available(self) -> str | None:
        return None

    def versions(self) -> dict:
        return {"onnxruntime": ort.__version__}

    def check_supported(self, model: onnx.ModelProto, target: Target) -> None:
        try:
            ort.InferenceSession(model.SerializeToString(), _options("disable"), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise UserError(f"ONNX Runtime cannot load the model: {_node_hint(model, exc)}") from None

    def compile(self, model: onnx.ModelProto, target: Target, workdir: Path, options: dict) -> CompileResult:
        level = target.settings.get("ort", {}).get("graph_optimization_level", "all")
        if level not in _LEVELS:
            raise UserError(
                f"target {target.name}: ort.graph_optimization_level {level!r} is not one of {list(_LEVELS)}"
            )
        so = _options(level)
        so.optimized_model_filepath = str(workdir / "model.onnx")
        info = {"optimization_level": level, "machine": platform.machine()}
        if target.precision == "int8":
            info["int8_kernels"] = int8_cpu.apply(so)
        try:
            ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT reports a full disk as "Protobuf serialization failed"
            if shutil.disk_usage(workdir).free < 2 * model.ByteSize() + (64 << 20):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(workdir / "model.onnx")) from None
            raise exc
        _normalise_node_names(workdir / "model.onnx", {n.name for n in model.graph.node})
        return CompileResult(["model.onnx"], info)

    def load(self, artifact_dir: Path, manifest: dict) -> ORTSession:
        """The artifact as saved (optimizations off). INT8: refused on a CPU whose u8s8 kernels
        saturate when it was compiled for them (``int8_cpu.check_runs_here``)."""
        int8 = manifest.get("backend_info", {}).get("int8_kernels")
        if manifest.get("target", {}).get("precision") == "int8":
            int8_cpu.check_runs_here(int8, f"artifact {artifact_dir}")
        threads = int(manifest.get("runtime", {}).get("threads", 0))
        return ORTSession(artifact_dir / "model.onnx", threads, int8=int8)

    def onnx_session(self, path: Path, threads: int = 0, level: str = "disable", host_int8: bool = False) -> ORTSession:
        return ORTSession(path, threads, level, int8={} if host_int8 else None)  # {}: this host's kernels


class ORTSession(Session):
    """``int8``: the ``int8_cpu`` record of the INT8 kernels, reported as ``int8_kernels``; its
    precision option is set on the session (it acts where ORT fuses Q/DQ here, ``level`` above
    "disable"; an artifact saved by ``compile`` already holds the rewritten weights)."""

    def __init__(self, path: Path, threads: int = 0, level: str = "disable", int8: dict | None = None):
        so = _options(level)
        self.int8_kernels = int8_cpu.apply(so, int8) if int8 is not None else None
        if threads:
            so.intra_op_num_threads = threads
        self._sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        model = onnx.load(str(path), load_external_data=False)
        self.inputs = value_specs(graph_inputs(model))
        self.outputs = value_specs(model.graph.output)

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(None, {s.name: v for s, v in zip(self.inputs, arrays)})


_FROM_TENSOR = "_nchwc"  # ORT's NCHWc transformer: the original output tensor's name + this


def _normalise_node_names(path: Path, kept: set[str]) -> None:
    """Name every node ORT made after its op and first output: ORT names some nodes it creates with
    counters (``ReorderOutput_token_148``) or by op alone, differently from run to run, which would
    make two builds of one model differ in bytes. Output tensor names are stable and unique. The
    NCHWc convolutions keep the name ORT derives from an original tensor
    (``/units.19/op/op.2/Relu_output_0_nchwc``): it is stable, and it is what places the node in a
    per-layer profile (on AVX-512 CPUs every blocked convolution is such a node)."""
    model = onnx.load(str(path))
    changed = False
    for node in model.graph.node:
        if node.name not in kept and node.output and not node.name.endswith(_FROM_TENSOR):
            name = f"{node.op_type}:{node.output[0]}"
            changed |= name != node.name
            node.name = name
    if changed:
        onnx.save(model, str(path))


def _options(level: str) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.graph_optimization_level = _LEVELS[level]
    so.log_severity_level = 3
    return so


def _node_hint(model: onnx.ModelProto, exc: Exception) -> str:
    text = first_line(exc)
    for node in model.graph.node:
        if node.name and node.name in text:
            return f"node {node.name!r} (op {node.op_type}): {text}"
    return text
