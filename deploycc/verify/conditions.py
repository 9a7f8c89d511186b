"""The conditions a measurement is taken under: CPU affinity and the machine's load.

* :func:`pinned` fixes the timing process to a set of CPUs (``os.sched_setaffinity``) for the
  duration of a measurement and puts the previous set back afterwards, so that the builds
  around it keep every core. With one runtime thread, ONNX Runtime and TVM run the model in the
  calling thread, so the model runs on exactly that CPU and is never migrated mid-run.
* :func:`load_state` says whether other work competes for the cores right now: the runnable
  tasks of ``/proc/loadavg`` (an instantaneous count, unlike the 1-minute average) beyond the
  CPUs this measurement leaves free, and a calibration spin: a fixed pure-Python loop timed in
  wall time against its CPU time. On an idle core the two agree; the wall/CPU ratio above 1 is
  the share of time the loop waited for the core. A measurement is *loaded* when the ratio
  exceeds ``max_spin_ratio`` or the runnable count exceeds the free CPUs.
* :func:`cpu_jitter_pct` says whether the CPU itself runs at a steady speed: the same short loop
  timed 15 times on the CPU clock, its scaled MAD in percent. Neither check above sees a virtual
  machine whose host lends the core's speed to its other guests: on this 2-core VM, idle (load
  average 1.0, spin ratio 1.00), an L2-resident matmul varied by 9 % scaled MAD from run to run,
  this loop by 2-30 %, and two sessions of one network timed in alternation disagreed by 3.5 %
  (sd of the ratio over 10 pairs). Such a measurement is flagged *unsteady*
  (``max_jitter_pct``), since no number of it repeats better than that.

The policy (``flag`` records the state with the measurement, ``refuse`` raises) is the
caller's; every record carries the state it was measured in.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

from deploycc.core.errors import UserError

POLICIES = ("flag", "refuse")
SPIN_ITERATIONS = 200_000


@contextlib.contextmanager
def pinned(cpus: set[int] | None):
    """Run the block with this process on ``cpus`` (None: as it is); restores the old set."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield sorted(cpus)
    finally:
        os.sched_setaffinity(0, old)


def timing_cpus(threads: int) -> set[int] | None:
    """The CPUs a measurement with ``threads`` runtime threads is pinned to: the last ``threads``
    of the ones this process may use (None when the thread count is not fixed or too large)."""
    if not hasattr(os, "sched_getaffinity") or threads < 1:
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return set(allowed[-threads:]) if threads <= len(allowed) else None


def spin_ratio(iterations: int = SPIN_ITERATIONS) -> float:
    """Wall time over CPU time of a fixed loop (1.0 on an idle core; 2.0: waited half the time)."""
    w0, c0 = time.perf_counter(), time.process_time()
    x = 0
    for i in range(iterations):
        x += i & 7
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return round(wall / cpu, 3) if cpu > 0 else 1.0


def cpu_jitter_pct(reps: int = 15, iterations: int = 40_000) -> float:
    """Scaled MAD, in percent of the median, of a fixed loop's CPU time over ``reps`` runs (after
    two warm-up runs): 0 on a CPU of steady speed."""
    times = []
    for _ in range(reps + 2):
        c0 = time.process_time()
        x = 0
        for i in range(iterations):
            x += i & 7
        times.append(time.process_time() - c0)
    times = sorted(times[2:])
    median = times[len(times) // 2]
    mad = sorted(abs(t - median) for t in times)[len(times) // 2]
    return round(100 * 1.4826 * mad / median, 2) if median > 0 else 0.0


def runnable_tasks() -> int | None:
    """Runnable tasks on the machine now, this process excluded (``/proc/loadavg`` field 4)."""
    try:
        running = open("/proc/loadavg").read().split()[3].split("/")[0]
        return max(int(running) - 1, 0)
    except (OSError, IndexError, ValueError):
        return None


@dataclass(frozen=True)
class LoadCheck:
    policy: str = "flag"
    max_spin_ratio: float = 1.15
    max_jitter_pct: float = 5.0

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise UserError(f"--on-load {self.policy!r}: choose one of {', '.join(POLICIES)}")

    def state(self, threads: int = 1) -> dict:
        """The load right now: runnable tasks, load average, spin ratio, CPU jitter, and the verdict."""
        ratio, running, jitter = spin_ratio(), runnable_tasks(), cpu_jitter_pct()
        free = max((os.cpu_count() or 1) - max(threads, 1), 0)
        reasons = []
        if ratio > self.max_spin_ratio:
            reasons.append(f"calibration loop ran at {ratio:.2f}x its CPU time (limit {self.max_spin_ratio:g})")
        if running is not None and running > free:
            reasons.append(f"{running} other runnable task(s) for {free} free CPU(s)")
        if jitter > self.max_jitter_pct:
            reasons.append(
                f"CPU speed unsteady: a fixed loop varied {jitter:.1f} % run to run (limit {self.max_jitter_pct:g} %)"
            )
        try:
            load = [round(v, 2) for v in os.getloadavg()]
        except OSError:  # pragma: no cover - platforms without getloadavg
            load = None
        return {
            "loaded": bool(reasons),
            "reasons": reasons,
            "spin_ratio": ratio,
            "jitter_pct": jitter,
            "runnable": running,
            "load_average": load,
            "policy": self.policy,
        }

    def enforce(self, state: dict, what: str) -> dict:
        """``state`` back, or a UserError when the policy refuses a loaded measurement."""
        if state["loaded"] and self.policy == "refuse":
            raise UserError(
                f"{what}: the machine is under load or unsteady ({'; '.join(state['reasons'])}); "
                "measure when it is quiet, or pass --on-load flag to record it instead"
            )
        return state
