"""The one latency-measurement protocol every command that times anything uses.

Protocol: ``warmup`` untimed runs; then timed runs until the median is stable (the last
``window`` medians within ``rel_tol`` of each other) or ``max_repeats`` / ``max_seconds`` is
reached, with at least ``min_repeats``. Reports median, p90, p99, min and mean in milliseconds,
the number of runs, the thread count (fixed by the caller and recorded) and machine facts.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
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

    def to_dict(self) -> dict:
        return asdict(self)


def time_callable(fn, protocol: Protocol = Protocol(), threads: int = 0) -> Latency:
    for _ in range(protocol.warmup):
        fn()
    samples: list[float] = []
    medians: list[float] = []
    start = time.perf_counter()
    stable = False
    while len(samples) < protocol.max_repeats:
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
        if len(samples) >= protocol.min_repeats:
            medians.append(float(np.median(samples)))
            stable = _stable(medians, protocol)
            if stable or time.perf_counter() - start > protocol.max_seconds:
                break
    a = np.asarray(samples)
    return Latency(float(np.median(a)), float(np.percentile(a, 90)), float(np.percentile(a, 99)),
                   float(a.min()), float(a.mean()), len(samples), stable, threads)


def time_session(session, feeds: dict, protocol: Protocol = Protocol(), threads: int = 0) -> Latency:
    return time_callable(lambda: session.run(feeds), protocol, threads)


def _stable(medians: list[float], protocol: Protocol) -> bool:
    if len(medians) < protocol.window:
        return False
    recent = medians[-protocol.window:]
    return (max(recent) - min(recent)) <= protocol.rel_tol * min(recent)


def machine_facts() -> dict:
    """CPU model, core count and frequency governor where readable."""
    facts = {"machine": platform.machine(), "system": platform.system(), "cpus": os.cpu_count(),
             "python": platform.python_version()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                facts["cpu_model"] = line.split(":", 1)[1].strip()
                break
    governor = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    facts["governor"] = governor.read_text().strip() if governor.exists() else "unreadable"
    return facts
