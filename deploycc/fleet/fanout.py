"""Spread independent jobs over every free device with a key; move a dropped device's work elsewhere.

One worker thread per device leased at the start (each lease is a child process that holds the
TVM RPC session, see ``device.py``) (every device the tracker lists as free for
the key, at most one per job). A worker takes the next job its device has not already failed,
prepares it on this machine (``prepare``: export and compile; serialized under one lock, because
the host's compilers and exporters are not safe to run concurrently and the host's cores are
better spent one build at a time), then runs it on its device (``work``) under ``job_timeout``.

When a job fails on a device, the job goes back to the queue marked as failed there, and the
device is checked with a cheap remote call: a device that no longer answers is retired (its
worker tries to lease a replacement once, with a bounded wait). A job that failed on
``max_attempts`` devices, or that no remaining device may take, is reported, never retried
forever. Every wait in here is bounded, so a fan-out always ends.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from deploycc.core.errors import first_line

from .errors import RemoteError, RemoteTimeout, call_with_timeout
from .tracker import Tracker

STOP_GRACE_S = 60.0  # on an interrupt: how long each worker may take to end its step (a build, a timing)


@dataclass
class FanOutResult:
    results: dict = field(default_factory=dict)  # job id -> (work result, device address)
    failures: dict = field(default_factory=dict)  # job id -> [error lines, one per attempt]
    devices: dict = field(default_factory=dict)  # device address -> statistics
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def failure_line(self) -> str:
        job, errors = next(iter(self.failures.items()))
        more = f" (and {len(self.failures) - 1} more job(s))" if len(self.failures) > 1 else ""
        return f"job {job} could not be run on any device: {errors[-1]}{more}"


@dataclass
class _Job:
    id: str
    payload: object
    failed_on: set = field(default_factory=set)
    errors: list = field(default_factory=list)


class _Board:
    """The shared queue: pending jobs, jobs in flight, results; one condition guards it all."""

    def __init__(self, jobs, max_attempts: int):
        self.pending = [_Job(str(i), p) for i, p in jobs]
        self.in_flight = 0
        self.cond = threading.Condition()
        self.out = FanOutResult()
        self.max_attempts = max_attempts
        self.stopped = False

    def take(self, device: str, poll: float = 0.2):
        """The next job ``device`` may run, or None when none can come to it any more."""
        with self.cond:
            while not self.stopped:
                for job in self.pending:
                    if device not in job.failed_on:
                        self.pending.remove(job)
                        self.in_flight += 1
                        return job
                if self.in_flight == 0:
                    return None
                self.cond.wait(poll)  # a job in flight elsewhere may come back
            return None

    def done(self, job: _Job, result, device: str) -> None:
        with self.cond:
            self.in_flight -= 1
            self.out.results[job.id] = (result, device)
            self.cond.notify_all()

    def failed(self, job: _Job, device: str, error: str) -> None:
        with self.cond:
            self.in_flight -= 1
            job.failed_on.add(device)
            job.errors.append(f"{device}: {error}")
            if len(job.failed_on) >= self.max_attempts:
                self.out.failures[job.id] = job.errors
            else:
                self.pending.append(job)
            self.cond.notify_all()

    def stop(self) -> None:
        """No job starts any more (an interrupt): every worker's next ``take`` returns None."""
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def abandon_rest(self, reason: str) -> None:
        with self.cond:
            for job in self.pending:
                self.out.failures[job.id] = [*job.errors, reason]
            self.pending.clear()


def fan_out(
    tracker: Tracker,
    key: str,
    jobs,
    prepare,
    work,
    *,
    job_timeout: float = 600.0,
    lease_timeout: float = 30.0,
    max_attempts: int = 2,
    max_devices: int | None = None,
    progress=None,
) -> FanOutResult:
    """Run ``work(lease, prepare(payload))`` for every ``(job_id, payload)`` over the fleet.

    ``progress(event, job_id, device, detail)`` is called with event "start", "done" or "failed".
    """
    jobs = list(jobs)
    start = time.perf_counter()
    free = tracker.require(key)
    board = _Board(jobs, max_attempts)
    if not jobs:
        return board.out
    count = max(1, min(free, len(jobs), max_devices or len(jobs)))
    prepared: dict = {}
    build_lock = threading.Lock()
    workers = [
        threading.Thread(
            target=_worker,
            daemon=True,
            name=f"deploycc-fleet-{i}",
            args=(tracker, key, board, prepare, work, prepared, build_lock, job_timeout, lease_timeout, progress),
        )
        for i in range(count)
    ]
    for w in workers:
        w.start()
    # Every step of a worker is bounded, so this join always returns; the bound is a last resort.
    deadline = time.monotonic() + (job_timeout + lease_timeout) * max_attempts * (len(jobs) + 1)
    try:
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
    except BaseException:  # an interrupt: the workers end the step they are in and close their leases
        board.stop()
        for w in workers:  # a worker left inside native code (a build) when Python exits aborts it
            w.join(STOP_GRACE_S)
        raise
    board.abandon_rest(f"no device with key {key!r} at {tracker.address} was left to run it")
    board.out.seconds = time.perf_counter() - start
    return board.out


def _worker(tracker, key, board: _Board, prepare, work, prepared, build_lock, job_timeout, lease_timeout, progress):
    lease = _lease(tracker, key, lease_timeout, board)
    while lease is not None:
        stats = board.out.devices.setdefault(
            lease.address, {"jobs": 0, "failures": 0, "busy_seconds": 0.0, "lost": False, "errors": []}
        )
        job = board.take(lease.address)
        if job is None:
            lease.close()
            return
        try:
            with build_lock:
                if job.id not in prepared:
                    prepared[job.id] = prepare(job.payload)
        except Exception as exc:  # a local failure: no device would do better, so no retry
            with board.cond:
                board.in_flight -= 1
                board.out.failures[job.id] = [f"preparing it here failed: {first_line(exc, with_type=True)}"]
                board.cond.notify_all()
            continue
        if progress:
            progress("start", job.id, lease.address, None)
        t0 = time.perf_counter()
        try:
            result = call_with_timeout(
                lambda lease=lease, job=job: work(lease, prepared[job.id]),
                job_timeout,
                f"job {job.id} on device {lease.address}",
            )
        except Exception as exc:
            stats["busy_seconds"] += time.perf_counter() - t0
            stats["failures"] += 1
            error = str(exc) if isinstance(exc, RemoteError) else first_line(exc, with_type=True)
            stats["errors"].append(error)
            board.failed(job, lease.address, error)
            if progress:
                progress("failed", job.id, lease.address, error)
            # A job that ran out of time may have left its device stuck: never reuse that session.
            if isinstance(exc, RemoteTimeout) or not _alive(lease):
                stats["lost"] = True
                lost = lease.address
                lease.sever()
                lease = _lease(tracker, key, lease_timeout, board, exclude=lost)
            continue
        stats["busy_seconds"] += time.perf_counter() - t0
        stats["jobs"] += 1
        board.done(job, result, lease.address)
        if progress:
            progress("done", job.id, lease.address, result)


def _lease(tracker, key, timeout, board: _Board, exclude: str | None = None):
    """A lease on a free device, or None (no free device within the bound, or nothing left to do)."""
    from .worker import DeviceProcess

    with board.cond:
        if not board.pending and board.in_flight == 0:
            return None
    try:
        lease = DeviceProcess(tracker.address, key, timeout)
    except (RemoteTimeout, RemoteError):
        return None
    if lease.address == exclude:  # the tracker still listed the lost device: give it back
        lease.close()
        return None
    return lease


def _alive(lease, timeout: float = 5.0) -> bool:
    """Whether the device still answers a trivial remote call within ``timeout`` seconds."""
    return lease.ping(timeout)
