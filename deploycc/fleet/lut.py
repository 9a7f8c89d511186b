"""``lut build`` and ``lut validate`` over a device fleet: this machine compiles, the devices time.

The work is the same as the local commands' (``deploycc.lut.profile`` / ``deploycc.lut.validate``):
the same entries or sampled architectures, the same pipeline build on the LUT's target, the same
protocol. What changes is where each artifact is timed: every job is uploaded to whichever free
device with the key takes it (:func:`deploycc.fleet.fan_out`), and the results merge into one
LUT (or one validation) whose records name the device that measured them, with per-device
statistics (jobs, busy seconds, failures, lost devices) under ``machine["fleet"]``.

Remote results are cached like local ones, under keys that also hold the device key, so an
interrupted fleet run resumes and a remote LUT never serves a local request or the reverse.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from deploycc.core.errors import UserError
from deploycc.core.numerics import random_feeds
from deploycc.targets import load_target
from deploycc.verify.measure import STATISTICS, machine_facts

from .errors import RemoteError
from .fanout import fan_out
from .session import RemoteSession
from .tracker import Tracker


class FleetOptions:
    """Where and how long: tracker address, device key, and the bounds of every wait."""

    def __init__(self, remote: str, key: str, job_timeout: float = 600.0, lease_timeout: float = 30.0,
                 call_timeout: float = 300.0, max_attempts: int = 2, max_devices: int | None = None):
        if not key:
            raise UserError("--key: give the device key the rpc_servers registered with (e.g. jetson-xavier)")
        self.tracker = Tracker(remote)
        self.remote, self.key = self.tracker.address, key
        self.job_timeout, self.lease_timeout = job_timeout, lease_timeout
        self.call_timeout, self.max_attempts, self.max_devices = call_timeout, max_attempts, max_devices

    def describe(self) -> dict:
        return {"tracker": self.remote, "key": self.key, "job_timeout_s": self.job_timeout,
                "call_timeout_s": self.call_timeout, "max_attempts": self.max_attempts}


def _time_remotely(lease, artifact: Path, protocol, threads: int, call_timeout: float) -> dict:
    session = RemoteSession(lease, artifact, call_timeout=call_timeout, threads=threads)
    try:
        latency = session.time(random_feeds(session.inputs, 0), protocol)
    finally:
        session.close()
    return latency.to_dict()


def _run_fleet(fleet: FleetOptions, jobs: dict, prepare, protocol, threads: int, progress=None):
    def work(lease, prepared):
        artifact, build_s = prepared
        return {"latency": _time_remotely(lease, artifact, protocol, threads, fleet.call_timeout),
                "build_seconds": build_s, "device": lease.address}

    result = fan_out(fleet.tracker, fleet.key, jobs.items(), prepare, work, job_timeout=fleet.job_timeout,
                     lease_timeout=fleet.lease_timeout, max_attempts=fleet.max_attempts,
                     max_devices=fleet.max_devices, progress=progress)
    return result


def _build_artifact(model_path: Path, target: str, options, scratch: Path, name: str):
    from deploycc.build.pipeline import build
    start = time.perf_counter()
    out = scratch / name
    build(str(model_path), target, out, options)
    return out, round(time.perf_counter() - start, 3)


def _cache_key(local_key: str, key: str) -> str:
    return hashlib.sha256(f"{local_key}|remote-key={key}".encode()).hexdigest()[:24]


def _read_cached(path: Path):
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            path.unlink()
    return None


def _write_cached(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, path)


def _fleet_stats(fleet: FleetOptions, result, cached: int) -> dict:
    return {**fleet.describe(), "devices": result.devices, "seconds": round(result.seconds, 3),
            "jobs_run": len(result.results), "from_cache": cached}


def _raise_failures(result, what: str) -> None:
    if result.failures:
        raise RemoteError(f"{what}: {len(result.failures)} job(s) were not measured ({result.failure_line()}); "
                          "the measured ones are cached: run the command again to finish")


def build_lut_remote(space: str, out, settings, fleet: FleetOptions, input_shape=None, backbone=None,
                     statistic: str = "median", cache=None, progress=None, units=None):
    """``lut build --remote``: profile every entry on the fleet and write one LUT file."""
    from deploycc.build.pipeline import BuildOptions
    from deploycc.lut.entries import export_entry, template_arch
    from deploycc.lut.profile import (
        _full_toolchain,
        cache_root,
        entry_cache_key,
        plan,
        profile_entry,
        protocol_for,
        unique_specs,
    )

    if statistic not in STATISTICS:
        raise UserError(f"--statistic {statistic!r}: choose one of {', '.join(STATISTICS)}")
    settings = replace(settings, protocol=protocol_for(statistic, base=settings.protocol))
    if settings.protocol.clock != "wall":
        raise UserError("--clock cpu measures this process's CPU time; a remote device times itself (use --clock wall)")
    fleet.tracker.require(fleet.key)
    target = load_target(settings.target)
    arch = template_arch(space, input_shape, backbone)
    stem, head, layers = plan(arch, units)
    specs = unique_specs(stem, head, layers)
    folder = cache_root(cache) / "entries-remote"
    records, jobs = {}, {}
    for spec in specs:
        if spec.identity:
            records[spec.key] = profile_entry(spec, arch, target, settings, folder)[0]
            continue
        path = folder / f"{_cache_key(entry_cache_key(spec, target, settings), fleet.key)}.json"
        cached = _read_cached(path)
        if cached is not None:
            records[spec.key] = cached
        else:
            jobs[spec.key] = (spec, path)
    cached_count = len(specs) - len(jobs)
    options = BuildOptions(verify_passes=False, tune_trials=settings.tune_trials, trials_per_task=settings.trials_per_task,
                           tuning_db=settings.tuning_db, threads=settings.threads, extra=dict(settings.extra))
    with tempfile.TemporaryDirectory(prefix="deploycc-fleet-lut-") as scratch:
        scratch = Path(scratch)

        def prepare(job):
            spec, _ = job
            name = hashlib.sha256(spec.key.encode()).hexdigest()[:16]
            onnx_path = export_entry(spec, arch, scratch / f"{name}.onnx")
            return _build_artifact(onnx_path, settings.target, options, scratch, name)

        result = _run_fleet(fleet, jobs, prepare, settings.protocol, settings.threads,
                            _entry_progress(progress, len(specs), cached_count))
    for entry_key, (value, device) in result.results.items():
        spec, path = jobs[entry_key]
        record = {**spec.to_dict(), "measured": True, "latency": value["latency"], "device": device,
                  "build_seconds": value["build_seconds"]}
        _write_cached(path, record)
        records[entry_key] = record
    _raise_failures(result, f"lut build on {fleet.key} devices at {fleet.remote}")
    return _assemble_lut(space, out, arch, layers, stem, head, target, settings, statistic, records,
                         {"host": machine_facts(), "fleet": _fleet_stats(fleet, result, cached_count)},
                         _full_toolchain(target))


def _entry_progress(progress, total: int, cached: int):
    if progress is None:
        return None
    done = [cached]

    def report(event, job_id, device, detail):
        if event == "done":
            done[0] += 1
        progress(done[0], total, event, job_id, device, detail if event == "failed" else None)
    return report


def _assemble_lut(space, out, arch, layers, stem, head, target, settings, statistic, records, machine, toolchain):
    from deploycc.lut.table import LUT, save_lut, target_digest
    from deploycc.models import searchable_layers
    layer_rows = [{"index": li.index, "c_in": li.c_in, "c_out": li.c_out, "stride": li.stride,
                   "in_h": li.in_h, "in_w": li.in_w, "candidates": {c: s.key for c, s in cands.items()}}
                  for li, cands in zip(searchable_layers(arch), layers)]
    lut = LUT(space=space, backbone=arch.backbone, head=arch.head, num_classes=arch.num_classes,
              input_shape=tuple(arch.input_shape),
              target={"name": target.name, "backend": target.backend, "sha256": target_digest(target)},
              toolchain=toolchain, threads=settings.threads, statistic=statistic,
              protocol=settings.protocol.to_dict(), stem=stem.key, head_entry=head.key, layers=layer_rows,
              entries=records, machine=machine, tune_trials=settings.tune_trials)
    save_lut(lut, out)
    lut.source = str(out)
    return lut


def validate_remote(lut, plan, fleet: FleetOptions, cache=None, protocol=None, progress=None) -> dict:
    """``lut validate --remote``: build the sampled architectures here, time them on the fleet."""
    from deploycc.build.pipeline import BuildOptions
    from deploycc.lut.measure_arch import arch_cache_key, arch_protocol, sample_genotypes
    from deploycc.lut.predict import Predictor
    from deploycc.lut.profile import cache_root, toolchain_versions
    from deploycc.lut.table import check_compatible
    from deploycc.lut.validate import result_header, score
    from deploycc.models import save_arch

    target = load_target(lut.target["name"])
    allowed = check_compatible(lut, target, toolchain_versions(target), plan.allow_mismatch)
    n_train = plan.n_train()
    protocol = protocol or arch_protocol(lut)
    if protocol.clock != "wall":
        raise UserError(f"{lut.source}: the LUT was timed on the {protocol.clock} clock of one process; "
                        "a remote device times itself on its own wall clock")
    fleet.tracker.require(fleet.key)
    predictor = Predictor(lut)
    genotypes = sample_genotypes(lut, plan.n, plan.seed)
    if len(genotypes) < plan.n:
        raise UserError(f"--n {plan.n}: the space has only {len(genotypes)} distinct architectures")
    archs = [predictor.arch_of(g, name=f"sample-{plan.seed}-{i}") for i, g in enumerate(genotypes)]
    folder = cache_root(cache) / "archs-remote"
    records, jobs = {}, {}
    for i, arch in enumerate(archs):
        path = folder / f"{_cache_key(arch_cache_key(arch, lut, protocol), fleet.key)}.json"
        cached = _read_cached(path)
        if cached is not None:
            records[str(i)] = {**cached, "cached": True}
        else:
            jobs[str(i)] = (arch, path)
    options = BuildOptions(verify_passes=False, threads=lut.threads)
    with tempfile.TemporaryDirectory(prefix="deploycc-fleet-val-") as scratch:
        scratch = Path(scratch)

        def prepare(job):
            arch, _ = job
            arch_file = save_arch(arch, scratch / f"{arch.name}.json")
            return _build_artifact(arch_file, lut.target["name"], options, scratch, f"{arch.name}.artifact")

        result = _run_fleet(fleet, jobs, prepare, protocol, lut.threads,
                            _entry_progress(progress, len(archs), len(archs) - len(jobs)))
    for job_id, (value, device) in result.results.items():
        arch, path = jobs[job_id]
        record = {"genotype": list(arch.genotype), **value}
        _write_cached(path, record)
        records[job_id] = {**record, "cached": False}
    _raise_failures(result, f"lut validate on {fleet.key} devices at {fleet.remote}")
    ordered = [records[str(i)] for i in range(len(archs))]
    measured = np.array([r["latency"][f"{lut.statistic}_ms"] for r in ordered])
    return score(predictor, genotypes, measured, n_train) | result_header(lut, plan, allowed) | {
        "fleet": _fleet_stats(fleet, result, len(archs) - len(jobs)),
        "devices": [r.get("device") for r in ordered],
        "build_seconds": [r.get("build_seconds") for r in ordered],
        "load_average": [None for _ in ordered]}


def clear_remote_cache(cache=None) -> None:
    from deploycc.lut.profile import cache_root
    for name in ("entries-remote", "archs-remote"):
        shutil.rmtree(cache_root(cache) / name, ignore_errors=True)
