"""The backend contract shared by every compiler adapter, and the registry of adapters.

A backend answers ``available()`` (None, or one sentence saying why it cannot run here),
``check_supported(model)`` (raises a UserError naming the first node and op it cannot compile),
``compile(model, target, workdir, options)`` (writes its files into ``workdir``) and
``load(artifact_dir, manifest)`` (a :class:`Session`). Verification and measurement only ever
see a Session, so they never care which compiler made the artifact.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import onnx

from deploycc.core.errors import Unavailable, UserError
from deploycc.core.numerics import TensorSpec


class Session(Protocol):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class CompileResult:
    files: list[str]
    info: dict = field(default_factory=dict)   # toolchain facts recorded in the manifest
    remaining: list[dict] = field(default_factory=list)  # steps that must still happen on the device


class Backend(Protocol):
    name: str

    def available(self) -> str | None: ...
    def versions(self) -> dict: ...
    def check_supported(self, model: onnx.ModelProto, target) -> None: ...
    def compile(self, model: onnx.ModelProto, target, workdir: Path, options: dict) -> CompileResult: ...
    def load(self, artifact_dir: Path, manifest: dict) -> Session: ...


_ADAPTERS = {
    "tvm": "deploycc.targets.tvm_backend:TVMBackend",
    "ort": "deploycc.targets.ort_backend:ORTBackend",
    "tensorrt": "deploycc.targets.tensorrt_backend:TensorRTBackend",
    "nnapi": "deploycc.targets.nnapi_backend:NNAPIBackend",
}


def register_backend(name: str, spec: str) -> None:
    """Register an adapter as ``module:Class``; it is imported only when first used."""
    _ADAPTERS[name] = spec


def get_backend(name: str) -> Backend:
    if name not in _ADAPTERS:
        raise UserError(f"unknown backend {name!r}; known backends: {', '.join(_ADAPTERS)}")
    module, _, cls = _ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def require_available(backend: Backend) -> None:
    reason = backend.available()
    if reason:
        raise Unavailable(f"backend {backend.name} cannot run here: {reason}")


def check_feeds(session: Session, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Feeds in the session's input order, checked against its specs (one clear error each)."""
    ordered = []
    for spec in session.inputs:
        if spec.name not in feeds:
            raise UserError(f"missing input {spec.name!r} (expects {spec.dtype} {list(spec.shape)})")
        value = np.asarray(feeds[spec.name])
        if tuple(value.shape) != tuple(spec.shape):
            raise UserError(f"input {spec.name!r} has shape {list(value.shape)}, expected {list(spec.shape)}")
        ordered.append(np.ascontiguousarray(value.astype(spec.dtype, copy=False)))
    extra = set(feeds) - {s.name for s in session.inputs}
    if extra:
        raise UserError(f"unknown input(s) {sorted(extra)}; the model takes {[s.name for s in session.inputs]}")
    return ordered
