"""``lut build`` and ``lut validate`` over a device fleet: a timer for the LUT workflow.

The work is the local commands' (``deploycc.lut.profile.build_lut``, ``deploycc.lut.validate``),
run by the same code: the same entries or sampled architectures, the same pipeline build on this
machine, the same protocol, the same cache. :class:`FleetTimer` changes only where each artifact is
timed: every job is uploaded to whichever free device with the key takes it
(:func:`deploycc.fleet.fan_out`), so the records name the device that measured them, and the LUT
records per-device statistics (jobs, busy seconds, failures, lost devices) under
``machine["fleet"]``.

A device that reports running under emulation (``deploycc device emulate-arm64``) has every
latency it measured marked ``emulated`` (the emulator), and the LUT's ``machine["fleet"]
["emulated"]`` names it: such a table checks that the pipeline runs end to end, and the latency
gate refuses it as a device figure (``deploycc.lut.gate``).

Remote results are cached like local ones, in their own folders and under keys that also hold the
device key, so an interrupted fleet run resumes and a remote record never serves a local request
or the reverse.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from deploycc.core.errors import UserError
from deploycc.core.numerics import random_feeds
from deploycc.lut.timer import build_job
from deploycc.verify.measure import machine_facts

from .errors import RemoteError
from .fanout import fan_out
from .session import RemoteSession
from .tracker import Tracker


class FleetOptions:
    """Where and how long: tracker address, device key, and the bounds of every wait."""

    def __init__(
        self,
        remote: str,
        key: str,
        job_timeout: float = 600.0,
        lease_timeout: float = 30.0,
        call_timeout: float = 300.0,
        max_attempts: int = 2,
        max_devices: int | None = None,
    ):
        if not key:
            raise UserError("--key: give the device key the rpc_servers registered with (e.g. jetson-xavier)")
        self.tracker = Tracker(remote)
        self.remote, self.key = self.tracker.address, key
        self.job_timeout, self.lease_timeout = job_timeout, lease_timeout
        self.call_timeout, self.max_attempts, self.max_devices = call_timeout, max_attempts, max_devices

    def describe(self) -> dict:
        return {
            "tracker": self.remote,
            "key": self.key,
            "job_timeout_s": self.job_timeout,
            "call_timeout_s": self.call_timeout,
            "max_attempts": self.max_attempts,
        }


class FleetTimer:
    """Builds every job here and times it on a free device with the key (``deploycc.lut.timer.Timer``)."""

    def __init__(self, options: FleetOptions):
        self.options = options
        self.emulated: set[str] = set()  # emulators the measuring devices reported

    def folder(self, kind: str) -> str:
        return f"{kind}-remote"

    def cache_key(self, local_key: str) -> str:
        return _cache_key(local_key, self.options.key)

    def check_build(self, settings) -> None:
        if settings.protocol.clock != "wall":
            raise UserError(
                "--clock cpu measures this process's CPU time; a remote device times itself (use --clock wall)"
            )
        self.options.tracker.require(self.options.key)

    def check_validate(self, lut, protocol) -> None:
        if protocol.clock != "wall":
            raise UserError(
                f"{lut.source}: the LUT was timed on the {protocol.clock} clock of one process; "
                "a remote device times itself on its own wall clock"
            )
        self.options.tracker.require(self.options.key)

    def run(self, jobs: list, protocol, threads: int, report, what: str):
        """Fan the jobs out over the fleet; returns the ``FanOutResult``. Raises RemoteError when a
        job could not be measured on any device (the measured ones are cached by then)."""
        fleet, by_id, errors = self.options, {job.id: job for job in jobs}, []

        def work(lease, prepared):
            artifact, build_s = prepared
            latency = _time_remotely(lease, artifact, protocol, threads, fleet.call_timeout)
            if latency.get("emulated"):
                self.emulated.add(latency["emulated"])
            return {"latency": latency, "build_seconds": build_s}

        def progress(event, job_id, device, detail):
            try:
                if event == "done":
                    report(
                        by_id[job_id],
                        "done",
                        {"latency": detail["latency"], "device": device, "build_seconds": detail["build_seconds"]},
                        device,
                    )
                else:
                    report(by_id[job_id], event, device=device, detail=detail if event == "failed" else None)
            except BaseException as exc:
                errors.append(exc)

        with tempfile.TemporaryDirectory(prefix="deploycc-fleet-lut-") as scratch:

            def prepare(job):
                return build_job(job, Path(scratch) / hashlib.sha256(job.id.encode()).hexdigest()[:16])

            result = fan_out(
                fleet.tracker,
                fleet.key,
                list(by_id.items()),
                prepare,
                work,
                job_timeout=fleet.job_timeout,
                lease_timeout=fleet.lease_timeout,
                max_attempts=fleet.max_attempts,
                max_devices=fleet.max_devices,
                progress=progress,
            )
        if errors:
            raise errors[0]
        if result.failures:
            raise RemoteError(
                f"{what} on {fleet.key} devices at {fleet.remote}: {len(result.failures)} job(s) "
                f"were not measured ({result.failure_line()}); the measured ones are cached: "
                "run the command again to finish"
            )
        return result

    def machine(self, summary, cached: int) -> dict:
        return {"host": machine_facts(), "fleet": self._stats(summary, cached)}

    def result_fields(self, summary, cached: int, records: list[dict]) -> dict:
        return {"fleet": self._stats(summary, cached), "devices": [r.get("device") for r in records]}

    def _stats(self, result, cached: int) -> dict:
        return {
            **self.options.describe(),
            "devices": result.devices,
            "seconds": round(result.seconds, 3),
            "jobs_run": len(result.results),
            "from_cache": cached,
            "emulated": sorted(self.emulated) or None,
        }


def _time_remotely(lease, artifact: Path, protocol, threads: int, call_timeout: float) -> dict:
    session = RemoteSession(lease, artifact, call_timeout=call_timeout, threads=threads)
    try:
        latency = session.time(random_feeds(session.inputs, 0), protocol).to_dict()
    finally:
        session.close()
    if session.emulated:  # never a device figure
        latency["emulated"] = session.emulated
    return latency


def _cache_key(local_key: str, key: str) -> str:
    return hashlib.sha256(f"{local_key}|remote-key={key}".encode()).hexdigest()[:24]


def clear_remote_cache(cache=None) -> None:
    from deploycc.lut.profile import cache_root

    for name in ("entries-remote", "archs-remote"):
        shutil.rmtree(cache_root(cache) / name, ignore_errors=True)
