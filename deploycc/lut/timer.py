"""Timers: where the LUT workflow's jobs are timed, and the local one that times them here.

A job (:class:`Job`) is one thing to build on this machine and time: a LUT entry or a sampled
architecture. The workflow (``deploycc.lut.workflow``) decides which jobs need measuring and
caches what comes back; a timer only runs the jobs it is handed and reports each one as it
finishes. :class:`LocalTimer` builds every job here (each network once, a group's jobs in
``build_workers`` processes: ``jobs.Builder``) and times them, never during a build, through the
common Session interface (``time_artifact``); ``deploycc.fleet.lut.FleetTimer`` builds here and
times on leased devices. Both build a job the same way, with ``jobs.build_job``.

A timer also owns what differs between places: which clocks it can time on (the refusals), the
cache folder and key of its results (so a remote record never serves a local request), and what
it records about the machine that measured.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from deploycc.verify.conditions import LoadCheck, pinned, timing_cpus
from deploycc.verify.measure import machine_facts, open_timed, time_callable
from deploycc.verify.ratio import RatioRule, time_anchored

from .jobs import Builder, Job, build_job

__all__ = ["Job", "LocalTimer", "Report", "Timer", "build_job"]


# report(job, event, measurement=None, device=None, detail=None): how a timer tells the workflow
# that a job started, finished ("done", with its measurement) or failed.
Report = Callable[..., None]


class Timer(Protocol):
    """Where jobs are timed. Implemented by :class:`LocalTimer` and ``deploycc.fleet.lut.FleetTimer``."""

    def folder(self, kind: str) -> str:
        """The cache folder for ``kind`` ("entries" or "archs") of records this timer measured."""

    def cache_key(self, local_key: str) -> str:
        """This timer's cache key for a job whose local key is ``local_key``."""

    def check_build(self, settings) -> None:
        """Refuse (UserError) LUT-build settings this timer cannot time, before anything is built."""

    def check_validate(self, lut, protocol) -> None:
        """Refuse (UserError) a validation this timer cannot time, before anything is built."""

    def run(self, jobs: list[Job], protocol, threads: int, report: Report, what: str) -> object:
        """Build and time every job, calling ``report`` as each one finishes; returns a summary of
        the run for :meth:`machine` and :meth:`result_fields`. Raises when a job was not measured."""

    def machine(self, summary, cached: int) -> dict:
        """The LUT's ``machine`` field."""

    def result_fields(self, summary, cached: int, records: list[dict]) -> dict:
        """What a validation result records about this timer's run, beyond the common fields."""


class LocalTimer:
    """Builds and times every job on this machine with the protocol.

    Repeatability: the timing process is pinned to fixed CPUs while it times (the last
    ``threads`` it may use; ``verify/conditions.py``), and the machine's load is checked before
    and after each measurement and recorded with it (``load``), or the measurement refused under
    load when ``load_check.policy`` is ``refuse``. With an interleaved protocol
    (``protocol.rounds > 1``) up to ``protocol.interleave`` jobs are built, then timed together
    in turns (``verify/repeat.py``), so that a disturbance spreads over all of them, and an
    anchor job set with :meth:`anchor_on` is timed in every group (``lut/anchor.py``)."""

    load_check = LoadCheck()  # the default policy: flag (record) a loaded measurement
    anchor: Job | None = None
    ratio: RatioRule | None = None

    build_workers = 1
    _builder: Builder | None = None

    def __init__(self, load_check: LoadCheck | None = None, build_workers: int = 1):
        if load_check is not None:
            self.load_check = load_check
        self.build_workers = build_workers

    @property
    def builder(self) -> Builder:
        """Builds each network once per timer, a group's jobs in ``build_workers`` processes (``jobs.py``)."""
        if self._builder is None:
            self._builder = Builder(self.build_workers)
        return self._builder

    def anchor_on(self, job: Job, ratio: RatioRule | None = None) -> None:
        """Time ``job`` in every interleaved group and record its time with each measurement; with
        ``ratio``, in every round, each job timed as its ratio to it (``verify/ratio.py``)."""
        self.anchor = job if job.key is not None else None
        self.ratio = ratio

    def folder(self, kind: str) -> str:
        return kind

    def cache_key(self, local_key: str) -> str:
        return local_key

    def check_build(self, settings) -> None:
        from deploycc.core.errors import UserError

        if settings.protocol.clock == "cpu" and settings.threads != 1:
            raise UserError(f"--clock cpu measures latency only with --threads 1 (got {settings.threads})")

    def check_validate(self, lut, protocol) -> None:
        """Every clock is this process's own here: nothing to refuse."""

    def anchored(self, protocol) -> bool:
        """Whether an anchor is timed beside the jobs: in every group of an interleaved protocol,
        and always when timing ratios (the rounds are the ratio rule's)."""
        return self.anchor is not None and (protocol.interleaved or self.ratio is not None)

    def run(self, jobs: list[Job], protocol, threads: int, report: Report, what: str = "") -> None:
        size = protocol.interleave if protocol.interleaved else 1
        with tempfile.TemporaryDirectory(prefix="deploycc-anchor-") as anchor_dir:
            anchor = None
            if self.anchor is not None and self.anchored(protocol) and jobs:
                anchor = self.builder.build_group([self.anchor], Path(anchor_dir))[0]
            for start in range(0, len(jobs), size):
                group = jobs[start : start + size]
                # one scratch folder per group: a LUT's artifacts would otherwise pile up on disk
                with tempfile.TemporaryDirectory(prefix="deploycc-lut-") as scratch:
                    built = self.builder.build_group(group, Path(scratch))
                    both = ([anchor] if anchor else []) + built
                    timed, load = self.time_built(both, protocol, threads, what or "timing")
                extra = timed.pop(0) if anchor else {}
                for job, (_, build_s), measurement in zip(group, built, timed):
                    report(
                        job,
                        "done",
                        {
                            **measurement,
                            "build_seconds": build_s,
                            "load_average": load["before"]["load_average"],
                            "load": load,
                            **extra,
                        },
                    )

    def time_built(self, built, protocol, threads: int, what: str):
        """(a measurement per artifact, load record) of the built artifacts, timed pinned. With an
        anchor first in ``built``, its measurement is the ``anchor`` field of the others'."""
        before = self.load_check.enforce(self.load_check.state(threads), what)
        runs = [open_timed(artifact, threads)[1] for artifact, _ in built]
        with pinned(timing_cpus(threads)) as cpus:
            timed = self._measure(runs, protocol, threads)
        after = self.load_check.enforce(self.load_check.state(threads), what)
        return timed, {
            "before": before,
            "after": after,
            "loaded": before["loaded"] or after["loaded"],
            "cpus": cpus,
        }

    def _measure(self, runs, protocol, threads: int) -> list[dict]:
        """One measurement per callable; the first is the anchor's when an anchor was built."""
        from deploycc.verify.repeat import time_interleaved

        anchor_id = self.anchor.id if self.anchor is not None and self.anchored(protocol) else None
        if anchor_id is not None and self.ratio is not None:
            anchor, rounds, subjects = time_anchored(runs[0], runs[1:], protocol, self.ratio, threads)
            head = {"anchor": {"id": anchor_id, "latency": anchor.to_dict(), "round_ms": rounds}}
            return [head] + [{"latency": lat.to_dict(), "ratio": ratio} for lat, ratio in subjects]
        if protocol.interleaved:
            latencies = time_interleaved(runs, protocol, threads)
        else:
            latencies = [time_callable(run, protocol, threads) for run in runs]
        out = [{"latency": latency.to_dict()} for latency in latencies]
        if anchor_id is not None:
            out[0] = {"anchor": {"id": anchor_id, "latency": out[0]["latency"]}}
        return out

    def machine(self, summary, cached: int) -> dict:
        return machine_facts()

    def result_fields(self, summary, cached: int, records: list[dict]) -> dict:
        return {}
