"""The runtimes a user already has, opened for timing beside deploycc's own artifacts.

A claim that a compiled artifact is fast only means something against what its user would run
otherwise: the exported ONNX in a plain ONNX Runtime session, the same file in OpenVINO's CPU
runtime, or the PyTorch network in eager mode. Each *contender* is described by a plain dict
(``spec``) so that it can be opened in a worker process of its own (``verify/workers.py``),
where its peak resident memory is its alone:

  * ``{"kind": "onnxruntime", "model": PATH}``: ONNX Runtime, default graph optimizations;
  * ``{"kind": "openvino", "model": PATH}``: OpenVINO's CPU plugin, latency hint, FP32 inference
    (no bf16 down-cast on CPUs that have it: the other contenders compute in FP32);
  * ``{"kind": "artifact", "path": DIR}``: a deploycc artifact through its Session;
  * ``{"kind": "torch", "net": ZOO_NAME_OR_ARCH}``: the PyTorch module, eager, inference mode.

Every spec also has ``threads`` and ``shape`` (the input, NCHW). No thread pool may spin after a
run, because the next contender's turn would lose its cores to it: ONNX Runtime sessions get
``session.intra_op.allow_spinning = 0`` (deploycc's own ``cpu-ort`` artifacts spin by default, so
their session is reopened with it), TVM's pool ``TVM_THREAD_POOL_SPIN_COUNT=0`` and OpenMP
``OMP_WAIT_POLICY=PASSIVE`` (:func:`quiet_pools`, set before any runtime is imported). A runtime
that is not installed raises :class:`NotRunnable` with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

KINDS = ("onnxruntime", "openvino", "artifact", "torch")


class NotRunnable(Exception):
    """The contender cannot run on this machine; the message is the reason."""


def quiet_pools() -> None:
    """No runtime's thread pool spins waiting for work once a run has ended (before imports)."""
    os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def feeds_for(shape) -> np.ndarray:
    """The fixed-seed image every contender is timed on."""
    return np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)


def open_runner(spec: dict) -> Callable[[], object]:
    """A callable that runs the contender once and returns its outputs."""
    kind = spec.get("kind")
    openers = {"onnxruntime": _onnxruntime, "openvino": _openvino, "artifact": _artifact, "torch": _torch}
    if kind not in openers:
        raise ValueError(f"contender kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return openers[kind](spec, int(spec.get("threads", 0)))


def _onnxruntime(spec: dict, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(spec["model"]), so, providers=["CPUExecutionProvider"])
    feeds = {sess.get_inputs()[0].name: feeds_for(spec["shape"])}
    return lambda: sess.run(None, feeds)


def _openvino(spec: dict, threads: int):
    try:
        import openvino as ov
    except ImportError as exc:
        raise NotRunnable(f"openvino not installed ({exc.name}); pip install -r requirements-bench.txt") from None
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": "1"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    compiled = ov.Core().compile_model(str(spec["model"]), "CPU", config)
    request = compiled.create_infer_request()
    x = feeds_for(spec["shape"])

    def run():
        request.infer({0: x})
        return [request.get_output_tensor(i).data for i in range(len(compiled.outputs))]

    return run


def _artifact(spec: dict, threads: int):
    from deploycc.pipeline.runtime import open_artifact
    from deploycc.verify.measure import pin_threads

    manifest, session = open_artifact(spec["path"], threads or None)
    backend = manifest.get("backend", "")
    pin_threads(backend, threads)
    if backend == "ort":
        _ort_without_spinning(session)
    return session.timed_runner({session.inputs[0].name: feeds_for(spec["shape"])})


def _ort_without_spinning(session) -> None:
    """Reopen an ``ort`` artifact's session with its own options plus no spinning."""
    import onnxruntime as ort

    old = session._sess
    so = old.get_session_options()
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session._sess = ort.InferenceSession(old._model_path, so, providers=old.get_providers())


def _torch(spec: dict, threads: int):
    import torch

    from deploycc.models import build_module, resolve_arch

    if threads:
        torch.set_num_threads(threads)
    module = build_module(resolve_arch(spec["net"])).eval()
    x = torch.from_numpy(feeds_for(spec["shape"]))

    def run():
        with torch.inference_mode():
            return module(x)

    return run
