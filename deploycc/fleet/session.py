"""Run and time an artifact on a remote device, with the common Session interface.

:class:`RemoteSession` is what ``verify --remote`` and ``bench --remote`` use: ``inputs``,
``outputs`` and ``run(feeds)`` like any local Session, plus ``time(feeds, protocol)``. The TVM
RPC work (upload, load, remote tensors, ``time_evaluator``) happens in the lease's child process
(``device.py``); this side checks the feeds, sends arrays, receives arrays and figures, and bounds
every exchange (``call_timeout``; a timing run gets the protocol's own ``max_seconds`` on top).

An ONNX Runtime artifact has no TVM module to upload; asking to run one remotely is one sentence
(``Unavailable``) rather than a second remote-execution mechanism beside TVM's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from deploycc.core.errors import Unavailable
from deploycc.core.numerics import TensorSpec, random_feeds
from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.backend import Session, unfinished_steps
from deploycc.verify.measure import Latency, Protocol, machine_facts

from .tracker import Tracker
from .worker import DeviceProcess

DEFAULT_CALL_TIMEOUT = 300.0  # seconds for one remote exchange (upload and load, one run, ...)


def check_remote_runnable(artifact: Path, manifest: dict) -> None:
    """A finished TVM artifact runs remotely, whatever it was built for (aarch64, CUDA: that is what
    a device is for); a bundle with something still to build on the device does not."""
    unfinished = unfinished_steps(manifest)
    if unfinished:
        step = unfinished[0]
        raise Unavailable(
            f"{artifact}: the artifact is not finished ({step.get('what', 'device step')}); finish it "
            f"on the device ({step.get('command', '')}) before running it there"
        )
    if manifest.get("backend") != "tvm" or "model.so" not in manifest.get("files", {}):
        raise Unavailable(
            f"{artifact}: remote runs go through TVM's RPC, which loads TVM modules only; this is a "
            f"{manifest.get('backend')!r} artifact (build it for a TVM target such as cpu or arm64-cpu, "
            f"or run it on the device itself)"
        )


def lease_device(remote: str, key: str, lease_timeout: float = 60.0, session_timeout: float = 0) -> DeviceProcess:
    """A leased device with ``key`` at tracker ``remote``; no device registered is one line (exit 2)."""
    tracker = Tracker(remote)
    tracker.require(key)
    return DeviceProcess(tracker.address, key, lease_timeout, session_timeout)


class RemoteSession(Session):
    """An artifact loaded on one leased device, with the common Session interface."""

    def __init__(
        self,
        lease: DeviceProcess,
        artifact: str | Path,
        manifest: dict | None = None,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        threads: int = 0,
        owns_lease: bool = False,
    ):
        artifact = Path(artifact).resolve()
        manifest = manifest or read_manifest(artifact)  # every file checked against its sha256
        check_remote_runnable(artifact, manifest)
        self.lease, self.call_timeout, self.threads = lease, float(call_timeout), int(threads)
        self._owns_lease = owns_lease  # a fan-out worker keeps its lease for its next job
        self._artifact = str(artifact)
        self.inputs = [TensorSpec.from_dict(d) for d in manifest["inputs"]]
        self.outputs = [TensorSpec.from_dict(d) for d in manifest["outputs"]]
        self.device = lease.address
        # what the device says it is; ``emulated`` names the emulator when it runs under one
        self.facts = (
            lease.call(
                ("load", self._artifact, manifest, self.threads), self.call_timeout, "upload and load of the artifact"
            )
            or {}
        )

    @property
    def emulated(self) -> str | None:
        return self.facts.get("emulated")

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self.lease.call(("run", self._artifact, arrays), self.call_timeout, "a run")

    def time(self, feeds: dict, protocol: Protocol = Protocol()) -> Latency:
        """The protocol's Latency, from the per-run times the device itself measured."""
        arrays = self.ordered_feeds(feeds)
        bound = protocol.max_seconds + self.call_timeout
        return Latency.from_dict(self.lease.call(("time", self._artifact, arrays, protocol), bound, "timing"))

    def close(self) -> None:
        if self._owns_lease:
            self.lease.close()


def open_remote(
    artifact: str | Path,
    remote: str,
    key: str,
    threads: int = 0,
    lease_timeout: float = 60.0,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
):
    """(manifest, RemoteSession) for ``artifact`` on a device with ``key`` at tracker ``remote``."""
    artifact = Path(artifact)
    manifest = read_manifest(artifact)
    check_remote_runnable(artifact, manifest)
    lease = lease_device(remote, key, lease_timeout)
    try:
        return manifest, RemoteSession(lease, artifact, manifest, call_timeout, threads, owns_lease=True)
    except BaseException:
        lease.close()
        raise


def timing_label(session: RemoteSession) -> str:
    """How a remote latency is to be read: a device figure, or one measured under emulation."""
    if session.emulated:
        return (
            f"EMULATED ({session.emulated}): measured under emulation on the host, not a device figure; "
            "use it to check that the artifact runs, never as the device's latency"
        )
    return "device-side (TVM time_evaluator)"


def remote_bench(
    artifact: str | Path,
    remote: str,
    key: str,
    protocol: Protocol = Protocol(),
    threads: int = 0,
    seed: int = 0,
    lease_timeout: float = 60.0,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
) -> dict:
    """``bench`` on a remote device: the protocol's figures plus which device and tracker."""
    manifest, session = open_remote(artifact, remote, key, threads, lease_timeout, call_timeout)
    try:
        latency = session.time(random_feeds(session.inputs, seed), protocol)
    finally:
        session.close()
    return {
        "artifact": str(artifact),
        "target": manifest["target"]["name"],
        "latency": latency.to_dict(),
        "remote": {
            "tracker": remote,
            "key": key,
            "device": session.device,
            "device_facts": session.facts,
            "timing": timing_label(session),
        },
        "host": machine_facts(),
        "artifact_sha256": hashlib.sha256((Path(artifact) / "manifest.json").read_bytes()).hexdigest(),
    }
