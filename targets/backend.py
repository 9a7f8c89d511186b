"""The backend contract shared by every compiler adapter, and the registry of adapters.

A backend (:class:`Backend`) answers ``available()`` (None, or one sentence saying why it cannot
run here), ``check_supported(model, target)`` (raises a UserError naming the first node and op it
cannot compile), ``compile(model, target, workdir, options)`` (writes its files into ``workdir``)
and ``load(artifact_dir, manifest)`` (a :class:`Session`). Optional capabilities are methods of
the contract with a default, never probed with ``hasattr``: ``proxy_session`` (what verifies a
device-only artifact here). Verification and measurement only ever see a Session, so they never
care which compiler made the artifact.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from deploycc.core.errors import Unavailable, UserError
from deploycc.core.numerics import TensorSpec

from .target import Target


class Session(abc.ABC):
    """A loaded artifact, the same interface for every backend.

    ``run(feeds)`` checks the feeds once against ``inputs`` (names, shapes, dtypes; one clear
    error each) and hands the arrays, in input order, to the backend's :meth:`_run`. Optional
    capability: :meth:`strict_run`, the exact semantics a comparison should use when this session
    serves as a reference (the default is ``run``; an ONNX reference overrides it with the
    optimization-free oracle).
    """

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source_path: Path | None = None  # the file the session was loaded from, when one names it
    int8_kernels: dict | None = None  # ORT INT8 kernels it runs and the CPU feature that chose them (targets.int8_cpu)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._run(self.ordered_feeds(feeds))

    def strict_run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.run(feeds)

    def timed_runner(self, feeds: dict[str, np.ndarray]):
        """A callable that runs the model once on ``feeds``, for latency measurement: what a
        deployed application pays per inference. A backend whose ``run`` also copies inputs in
        and outputs out of its own memory (work the application does once, or not at all)
        overrides it to leave those copies out of the timed call."""
        ordered = self.ordered_feeds(feeds)
        return lambda: self._run(ordered)

    @abc.abstractmethod
    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run on arrays already checked and ordered like ``inputs``."""

    def ordered_feeds(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Feeds in the session's input order, checked against its specs (one clear error each)."""
        ordered = []
        for spec in self.inputs:
            if spec.name not in feeds:
                raise UserError(f"missing input {spec.name!r} (expects {spec.dtype} {list(spec.shape)})")
            value = np.asarray(feeds[spec.name])
            if tuple(value.shape) != tuple(spec.shape):
                raise UserError(f"input {spec.name!r} has shape {list(value.shape)}, expected {list(spec.shape)}")
            ordered.append(np.ascontiguousarray(value.astype(spec.dtype, copy=False)))
        extra = set(feeds) - {s.name for s in self.inputs}
        if extra:
            raise UserError(f"unknown input(s) {sorted(extra)}; the model takes {[s.name for s in self.inputs]}")
        return ordered


@dataclass
class CompileResult:
    files: list[str]
    info: dict = field(default_factory=dict)  # toolchain facts recorded in the manifest
    remaining: list[dict] = field(default_factory=list)  # steps that must still happen on the device
    log: list[str] = field(default_factory=list)  # what the compiler printed (the build log, not the manifest)


# A step left for the device (``CompileResult.remaining``, the manifest's ``remaining``) is of one
# of two kinds: "finish" (something is still to be built there, e.g. a TensorRT engine: the
# artifact is not finished) or "run" (the artifact is complete but only its device executes it: a
# cross-compiled or CUDA library, a phone's model). A step without a kind is "finish".
FINISH, RUN = "finish", "run"


def device_step(what: str, command: str, kind: str) -> dict:
    assert kind in (FINISH, RUN), kind
    return {"what": what, "command": command, "kind": kind}


def unfinished_steps(manifest: dict) -> list[dict]:
    """The steps that must still build something on the device before the artifact can run."""
    return [s for s in manifest.get("remaining") or [] if s.get("kind", FINISH) != RUN]


@dataclass(frozen=True)
class Proxy:
    """What stands in, on this machine, for an artifact whose own execution needs its device."""

    session: Session
    subject: str  # one sentence for the manifest: what was run instead, and why
    model: onnx.ModelProto | None = None  # the ONNX it runs, where that is not the compiled graph (FP16 simulation)


class Backend(abc.ABC):
    """One compiler adapter. Optional capability: :meth:`proxy_session` (default: none)."""

    name: str = ""

    @abc.abstractmethod
    def available(self) -> str | None:
        """None when the backend can compile here, else one sentence saying why not."""

    @abc.abstractmethod
    def versions(self) -> dict: ...

    @abc.abstractmethod
    def check_supported(self, model: onnx.ModelProto, target: Target) -> None:
        """Raise a UserError naming the first node and op this backend cannot compile."""

    @abc.abstractmethod
    def compile(self, model: onnx.ModelProto, target: Target, workdir: Path, options: dict) -> CompileResult: ...

    @abc.abstractmethod
    def load(self, artifact_dir: Path, manifest: dict) -> Session: ...

    def proxy_session(self, artifact_dir: Path, manifest: dict) -> Proxy | None:
        """For an artifact with steps left on its device: what this machine can run in its place
        to verify it as far as it can. None: nothing can stand in (the build says so)."""
        return None

    def onnx_session(self, path: Path, threads: int = 0, level: str = "disable", host_int8: bool = False) -> Session:
        """A session of the ONNX model at ``path`` run by this backend's runtime on this machine
        (``level``: its graph optimizations; ``host_int8``: the INT8 kernels exact on this CPU).
        Only the host runtime (:data:`HOST_RUNTIME`) offers it."""
        raise Unavailable(f"backend {self.name} does not run ONNX models directly")


_ADAPTERS = {
    "tvm": "deploycc.targets.tvm.backend:TVMBackend",
    "ort": "deploycc.targets.onnxruntime.backend:ORTBackend",
    "tensorrt": "deploycc.targets.tensorrt.backend:TensorRTBackend",
    "nnapi": "deploycc.targets.nnapi.backend:NNAPIBackend",
}


# The runtime that stands in, on this machine, for a device-only artifact (TensorRT's and NNAPI's
# proxies, the FP16 simulation). Reached by name through the registry, so that no compiler package
# imports another (the import contracts in pyproject.toml).
HOST_RUNTIME = "ort"


def host_session(path: Path, threads: int = 0, level: str = "disable", host_int8: bool = False) -> Session:
    """The ONNX model at ``path`` on this machine's ONNX runtime (:data:`HOST_RUNTIME`)."""
    return get_backend(HOST_RUNTIME).onnx_session(path, threads, level, host_int8)


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
