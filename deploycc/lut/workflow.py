"""The LUT workflow's measuring step, written once for every timer: cache, timing, progress.

:func:`measure_jobs` takes the jobs of a LUT build (its entries) or of a validation (its sampled
architectures), serves every job whose record is already in the cache, hands the others to a
timer (``deploycc.lut.timer``: here, or a device fleet) and writes each record to the cache the
moment the timer reports it measured (atomically), so a run that is interrupted or fails resumes
where it stopped. ``lut build`` (``profile.build_lut``), ``lut validate`` (``validate.validate``)
and the single-architecture ``measure_arch`` are all built on it.

Progress has one shape for every timer: ``progress(Step)``, called after each job comes from the
cache or is measured, and, where the timer says so, when a job starts or fails on a device.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from .timer import Job, Timer


@dataclass(frozen=True)
class Step:
    """One thing that happened to one job, for a progress display."""

    done: int                    # jobs finished so far, from the cache or measured
    total: int
    job: str                     # the entry key, or the architecture's index in the sample
    event: str                   # "cached", "start", "done" or "failed"
    record: dict | None = None   # the job's record ("cached", "done")
    device: str | None = None    # the device it ran on (a fleet's jobs)
    detail: str | None = None    # why it failed ("failed")


@dataclass
class Measured:
    records: dict[str, dict]     # job id -> record, in the order of the jobs
    cached: set[str]             # the ids served from the cache (or with nothing to time)
    summary: object = None       # the timer's account of its run (see Timer.run)


def measure_jobs(timer: Timer, jobs: list[Job], folder: Path, protocol, threads: int, progress=None,
                 what: str = "") -> Measured:
    """Every job's record: from ``folder`` (the cache) where it is there, else timed by ``timer``
    and cached as soon as it is measured. ``what`` names the command in a timer's errors."""
    tally = _Tally(len(jobs), progress)
    paths = {job.id: Path(folder) / f"{timer.cache_key(job.key)}.json" for job in jobs if job.key is not None}
    missing = []
    for job in jobs:
        record = job.record if job.key is None else read_cached(paths[job.id])
        if record is None:
            missing.append(job)
        else:
            tally.found(job, record, "cached")

    def report(job: Job, event: str, measurement: dict | None = None, device=None, detail=None) -> None:
        if event == "done":
            record = {**job.record, **measurement}
            write_cached(paths[job.id], record)
            tally.found(job, record, "done", device)
        else:
            tally.step(job, event, device, detail)

    summary = timer.run(missing, protocol, threads, report, what)
    unmeasured = [job.id for job in missing if job.id not in tally.records]
    if unmeasured:  # a timer must raise when it could not measure a job; this one returned
        raise RuntimeError(f"{type(timer).__name__} returned without measuring {', '.join(unmeasured)}")
    return Measured({job.id: tally.records[job.id] for job in jobs}, tally.cached, summary)


class _Tally:
    """The records found so far and the progress count; a fleet's timer reports from several threads."""

    def __init__(self, total: int, progress):
        self.total, self.progress = total, progress
        self.records: dict[str, dict] = {}
        self.cached: set[str] = set()
        self.lock = threading.Lock()

    def found(self, job: Job, record: dict, event: str, device=None) -> None:
        with self.lock:
            self.records[job.id] = record
            if event == "cached":
                self.cached.add(job.id)
            self._step(job.id, event, record, device, None)

    def step(self, job: Job, event: str, device, detail) -> None:
        with self.lock:
            self._step(job.id, event, None, device, detail)

    def _step(self, job_id: str, event: str, record, device, detail) -> None:
        if self.progress:
            self.progress(Step(len(self.records), self.total, job_id, event, record, device, detail))


def read_cached(path: Path) -> dict | None:
    """The cached record at ``path``, or None (absent, or torn by a crash: then it is removed)."""
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            path.unlink()  # a torn write from an older crash: measure again
    return None


def write_cached(path: Path, record: dict) -> None:
    """Write ``record`` to ``path`` atomically (temporary file beside it, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, path)
