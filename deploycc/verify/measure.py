"""The one latency-measurement protocol every command that times anything uses.

Protocol: ``warmup`` untimed runs; then timed runs until the median is stable (the last
``window`` running medians within ``rel_tol`` of each other) or ``max_repeats`` / ``max_seconds``
is reached, with at least ``min_repeats``. ``statistic = "min"`` judges stability on the running
minimum instead: on a machine shared with other work, interference only ever adds time, so the
minimum of enough runs is the least disturbed estimate (what the LUT benchmarks here use).

``clock = "cpu"`` times each run in CPU time of this process (user + system) instead of wall
time. With one runtime thread, which ONNX Runtime and TVM both run in the calling thread, that is
the run's latency minus the time the process spent descheduled while other tenants used the
core; it is refused for more than one thread, where CPU time adds up across threads. Wall time
is the default and what a deployment sees. Reports median, p90, p99, min, mean and standard
deviation in milliseconds, the number of runs, whether the median settled, and the thread count.

The thread count is fixed, not left to the runtime: ONNX Runtime reads it from the artifact's
manifest (``open_artifact(path, threads)``), TVM's thread pool is configured through
``runtime.config_threadpool`` before timing (:func:`pin_threads`). :func:`machine_facts` records
the CPU model, frequency governor and load average, because a measurement taken while other
processes compete for the cores is not comparable with one taken on an idle machine.

Everything is timed through the common Session interface, so it works for every backend.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Protocol:
    warmup: int = 2
    min_repeats: int = 5
    max_repeats: int = 50
    max_seconds: float = 60.0
    rel_tol: float = 0.02
    window: int = 3
    statistic: str = "median"  # the statistic whose stability ends the repeats: median or min
    clock: str = "wall"  # wall, or cpu (process CPU time; one thread only)
    # Interleaved repeats (``verify/repeat.py``): with rounds > 1, up to ``interleave`` jobs of a
    # LUT build or validation are timed in turns, ``min_repeats`` runs per round each, rounds
    # further than ``reject_mad`` scaled MADs from the median round rejected.
    rounds: int = 1
    interleave: int = 1
    reject_mad: float = 0.0

    def __post_init__(self):
        if self.statistic not in ("median", "min"):
            raise ValueError(f"protocol statistic must be median or min, got {self.statistic!r}")
        if self.clock not in CLOCKS:
            raise ValueError(f"protocol clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.rounds < 1 or self.interleave < 1 or self.reject_mad < 0:
            raise ValueError("protocol rounds and interleave must be >= 1 and reject_mad >= 0")

    @property
    def interleaved(self) -> bool:
        return self.rounds > 1

    def to_dict(self) -> dict:
        """The fields; the interleaving ones only when set, so that the cache keys of measurements
        taken before they existed (one block of runs) stay valid."""
        d = asdict(self)
        for name, default in (("rounds", 1), ("interleave", 1), ("reject_mad", 0.0)):
            if d[name] == default:
                del d[name]
        return d


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    mean_ms: float
    runs: int
    stable: bool
    threads: int
    stdev_ms: float = 0.0
    clock: str = "wall"
    # every timed run in order, for a distribution plot; kept out of to_dict (LUT entries, reports)
    samples_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)
    rounds: int = 0  # interleaved rounds (0: one block of runs)
    rejected: int = 0  # rounds the outlier rule rejected
    spread_pct: float | None = None  # max/min - 1 of the kept rounds' values

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["samples_ms"]
        if not self.rounds:
            for name in ("rounds", "rejected", "spread_pct"):
                del d[name]
        return d

    def stat(self, name: str) -> float:
        """One statistic by name (``median``, ``min``, ``p90``, ...), in milliseconds."""
        return float(getattr(self, f"{name}_ms"))

    @staticmethod
    def from_dict(d: dict) -> Latency:
        fields = Latency.__dataclass_fields__
        return Latency(**{k: v for k, v in d.items() if k in fields})


STATISTICS = ("median", "min", "mean", "p90")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_callable(fn, protocol: Protocol = Protocol(), threads: int = 0) -> Latency:
    if protocol.clock == "cpu" and threads != 1:
        from deploycc.core.errors import UserError

        raise UserError(
            f"the cpu clock measures latency only with exactly 1 thread (got {threads}); use the wall clock or 1 thread"
        )
    clock = CLOCKS[protocol.clock]
    for _ in range(protocol.warmup):
        fn()
    samples: list[float] = []
    running: list[float] = []
    reduce = np.median if protocol.statistic == "median" else np.min
    start = time.perf_counter()
    stable = False
    while len(samples) < protocol.max_repeats:
        t0 = clock()
        fn()
        samples.append((clock() - t0) * 1e3)
        if len(samples) >= protocol.min_repeats:
            running.append(float(reduce(samples)))
            stable = _stable(running, protocol)
            if stable or time.perf_counter() - start > protocol.max_seconds:
                break
    return summarize(samples, stable, threads, protocol.clock)


def summarize(samples_ms, stable: bool, threads: int, clock: str = "wall") -> Latency:
    a = np.asarray(samples_ms, dtype=np.float64)
    return Latency(
        float(np.median(a)),
        float(np.percentile(a, 90)),
        float(np.percentile(a, 99)),
        float(a.min()),
        float(a.mean()),
        int(a.size),
        bool(stable),
        int(threads),
        float(a.std()),
        clock,
        tuple(float(x) for x in a),
    )


def time_session(session, feeds: dict, protocol: Protocol = Protocol(), threads: int = 0) -> Latency:
    return time_callable(session.timed_runner(feeds), protocol, threads)


def time_batched(run_batch, protocol: Protocol = Protocol(), threads: int = 0, step: int = 0) -> Latency:
    """The protocol for a runtime that times its own runs (TVM's ``time_evaluator`` on a remote
    device): ``run_batch(n)`` runs the model n times and returns the n run times in ms.

    Same warm-up, stopping rule and statistics as :func:`time_callable`. The stability check runs
    after every sample, so the measurement stops at the sample count a local run would stop at;
    samples a batch took past that point are dropped. Clock: "device" (the device's own timer).
    """
    if protocol.warmup:
        run_batch(protocol.warmup)
    if protocol.interleaved:  # one artifact per device at a time: rounds and the outlier rule, in turn
        rounds = [[float(v) for v in run_batch(max(protocol.min_repeats, 1))] for _ in range(protocol.rounds)]
        return replace(reduce_rounds(rounds, protocol, threads), clock="device")
    reduce = np.median if protocol.statistic == "median" else np.min
    samples: list[float] = []
    running: list[float] = []
    start, stable = time.perf_counter(), False
    step = step or max(protocol.window, 1)
    while len(samples) < protocol.max_repeats and not stable:
        want = step if samples else max(step, protocol.min_repeats)
        for value in run_batch(min(want, protocol.max_repeats - len(samples))):
            samples.append(float(value))
            if len(samples) >= protocol.min_repeats:
                running.append(float(reduce(samples)))
                stable = _stable(running, protocol)
                if stable:
                    break
        if time.perf_counter() - start > protocol.max_seconds:
            break
    return summarize(samples, stable, threads, "device")


def kept_rounds(values, k: float) -> np.ndarray:
    """Boolean mask of the rounds the outlier rule keeps (all when ``k`` is 0)."""
    v = np.asarray(values, dtype=np.float64)
    if k <= 0 or v.size < 3:
        return np.ones(v.size, dtype=bool)
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    keep = np.abs(v - med) <= k * mad if mad > 0 else np.ones(v.size, dtype=bool)
    if keep.sum() * 2 < v.size:  # never throw away the majority: keep the closest half
        keep = np.zeros(v.size, dtype=bool)
        keep[np.argsort(np.abs(v - med))[: (v.size + 1) // 2]] = True
    return keep


def reduce_rounds(rounds: list[list[float]], protocol: Protocol, threads: int) -> Latency:
    """The Latency of one callable's rounds of runs (ms) under the outlier rule."""
    reduce = np.median if protocol.statistic == "median" else np.min
    values = np.array([reduce(r) for r in rounds])
    keep = kept_rounds(values, protocol.reject_mad)
    runs = [s for r, kept in zip(rounds, keep) if kept for s in r]
    spread = float(100 * (values[keep].max() / values[keep].min() - 1)) if values[keep].min() > 0 else 0.0
    base = summarize(runs, True, threads, protocol.clock)
    return replace(base, rounds=len(rounds), rejected=int((~keep).sum()), spread_pct=round(spread, 3))


def _stable(running: list[float], protocol: Protocol) -> bool:
    if len(running) < protocol.window:
        return False
    recent = running[-protocol.window :]
    return (max(recent) - min(recent)) <= protocol.rel_tol * min(recent)


def pin_threads(backend: str, threads: int) -> None:
    """Fix the runtime's thread count where it is process-wide (TVM); 0 leaves the default."""
    if threads and backend == "tvm":
        import tvm  # noqa: F401  (registers the runtime's global functions)
        import tvm_ffi

        # affinity mode 1 ("big cores"): on a homogeneous CPU, simply `threads` workers
        tvm_ffi.get_global_func("runtime.config_threadpool")(1, int(threads))


def open_timed(path, threads: int = 0, seed: int = 0):
    """(manifest, run) for the artifact folder at ``path``: ``run()`` runs it once on fixed-seed
    random inputs, with the runtime's threads fixed (``Session.timed_runner``: no per-run copies
    in or out of the runtime's memory)."""
    from deploycc.core.numerics import random_feeds
    from deploycc.pipeline.runtime import open_artifact

    manifest, session = open_artifact(path, threads or None)
    pin_threads(manifest.get("backend", ""), threads)
    return manifest, session.timed_runner(random_feeds(session.inputs, seed))


def time_artifact(path, protocol: Protocol = Protocol(), threads: int = 0, seed: int = 0):
    """(manifest, Latency) of the artifact folder at ``path`` on fixed-seed random inputs."""
    manifest, run = open_timed(path, threads, seed)
    return manifest, time_callable(run, protocol, threads)


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - platforms without getloadavg
        return None


def machine_facts() -> dict:
    """CPU model, core count, frequency governor and load average, where readable."""
    facts: dict[str, object] = {
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": load_average(),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                facts["cpu_model"] = line.split(":", 1)[1].strip()
                break
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    facts["governor"] = governor.read_text().strip() if governor.exists() else "unreadable"
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "TVM_NUM_THREADS") if k in os.environ}
    if env:
        facts["thread_env"] = env
    return facts


def reduce_runs(times: list[float], per_run: str) -> float:
    """One figure of a kernel's time in each run: their mean, or their median."""
    if per_run not in ("mean", "median"):
        raise ValueError(f"per_run must be mean or median, got {per_run!r}")
    return float(np.mean(times) if per_run == "mean" else np.median(times))
