"""The LUT workflow's measuring step, written once for every timer: cache, timing, progress.

:func:`measure_jobs` takes the jobs of a LUT build (its entries) or of a validation (its sampled
architectures), serves every job whose record is already in the cache, hands the others to a
timer (``deploycc.lut.timer``: here, or a device fleet) and writes each record to the cache the
moment the timer reports it measured (atomically), so a run that is interrupted or fails resumes
where it stopped. The cache is the verified cache of ``deploycc.core.cache``: a record is served
only when its hash, its fixed part (the job's own record) and its latency figures (finite,
positive, min <= median <= p90 <= p99) hold; a bad one is reported on one line, removed and timed
again. Timing holds the cache folder's timing lock, so two runs on one cache never time side by
side: the second waits, then serves what the first measured and times only what is left.
``lut build`` (``profile.build_lut``), ``lut validate`` (``validate.validate``)
and the single-architecture ``measure_arch`` are all built on it.

Progress has one shape for every timer: ``progress(Step)``, called after each job comes from the
cache or is measured, and, where the timer says so, when a job starts or fails on a device.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from filelock import Timeout

from deploycc.core.cache import JsonCache, finite, lock_for

from .timer import Job, Timer

_LATENCY_ORDER = ("min_ms", "median_ms", "p90_ms", "p99_ms")


@dataclass(frozen=True)
class Step:
    """One thing that happened to one job, for a progress display."""

    done: int  # jobs finished so far, from the cache or measured
    total: int
    job: str  # the entry key, or the architecture's index in the sample
    event: str  # "cached", "start", "done" or "failed"
    record: dict | None = None  # the job's record ("cached", "done")
    device: str | None = None  # the device it ran on (a fleet's jobs)
    detail: str | None = None  # why it failed ("failed")


@dataclass
class Measured:
    records: dict[str, dict]  # job id -> record, in the order of the jobs
    cached: set[str]  # the ids served from the cache (or with nothing to time)
    summary: object = None  # the timer's account of its run (see Timer.run)


def measure_jobs(
    timer: Timer, jobs: list[Job], folder: Path, protocol, threads: int, progress=None, what: str = ""
) -> Measured:
    """Every job's record: from ``folder`` (the cache) where it is there, else timed by ``timer``
    and cached as soon as it is measured. ``what`` names the command in a timer's errors."""
    tally = _Tally(len(jobs), progress)
    cache = JsonCache(Path(folder), "lut-record")
    keys = {job.id: timer.cache_key(job.key) for job in jobs if job.key is not None}
    missing = _serve_cached(jobs, cache, keys, tally)

    def report(job: Job, event: str, measurement: dict | None = None, device=None, detail=None) -> None:
        if event == "done":
            assert measurement is not None, "a done job reports its measurement"
            record = {**job.record, **measurement}
            cache.put(keys[job.id], record)
            tally.found(job, record, "done", device)
        else:
            tally.step(job, event, device, detail)

    if not missing:
        summary = timer.run(missing, protocol, threads, report, what)
    else:
        with _timing_lock(Path(folder)):  # another run timing this cache finishes first
            missing = _serve_cached(missing, cache, keys, tally)
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


def _serve_cached(jobs: list[Job], cache: JsonCache, keys: dict, tally: _Tally) -> list[Job]:
    """Report every job whose sound record is cached (or that has nothing to time); the rest."""
    missing = []
    for job in jobs:
        record = job.record if job.key is None else cache.get(keys[job.id], lambda r, j=job: record_problem(r, j))
        if record is None:
            missing.append(job)
        else:
            tally.found(job, record, "cached")
    return missing


def record_problem(record, job: Job) -> str | None:
    """What is wrong with a cached ``record`` of ``job``: not its job, or latency figures that
    cannot be a measurement."""
    if not isinstance(record, dict):
        return "not a record"
    changed = [k for k, v in job.record.items() if record.get(k) != v]
    if changed:
        return f"field {changed[0]!r} is not this job's"
    latency = record.get("latency")
    if not isinstance(latency, dict):
        return "no latency"
    figures = [latency.get(k) for k in _LATENCY_ORDER]
    if not all(finite(v, positive=True) for v in figures):
        return f"latency {dict(zip(_LATENCY_ORDER, figures))} is not positive and finite"
    if figures != sorted(cast(list[float], figures)):  # all numbers: checked above
        return "latency figures out of order (need min <= median <= p90 <= p99)"
    return None


@contextmanager
def _timing_lock(folder: Path):
    """Hold the cache folder's timing lock; says on stderr when it waits for another run."""
    lock = lock_for(folder / "timing")
    try:
        lock.acquire(timeout=0)
    except Timeout:  # another run holds it
        print(f"deploycc: waiting for another run timing into {folder}", file=sys.stderr)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
