"""Contenders timed in worker processes of their own, in interleaved rounds, with peak memory.

Two runtimes in one process cannot be told apart by their resident memory, and a runtime's
allocator keeps what the previous contender freed. So each contender (a ``verify/peers.py`` spec)
is opened in a child process, ``python -m deploycc.verify.workers SPEC``, that imports only what
that contender needs. The child times its own runs (``perf_counter`` around each call, so the
pipe is never timed) and answers one JSON line per request on a private copy of its stdout
(whatever a runtime prints goes to stderr): ``{"runs": n}`` -> ``{"ms": [...]}``, ``{"quit": 1}``
-> its peak resident memory (``VmHWM``: imports, model, buffers and every run so far) and the
resident memory before the contender was opened (the interpreter, numpy and this module).

:func:`time_workers` gives every worker ``protocol.warmup`` untimed runs, then rounds of
``min_repeats`` runs each, the order rotating every round as in ``verify/repeat.py``, and reduces
each worker's rounds with the same outlier rule (``measure.reduce_rounds``). Only one worker runs
at a time; the others wait on their pipe with no pool spinning (``peers.quiet_pools``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploycc.verify.measure import Latency, Protocol, reduce_rounds
from deploycc.verify.repeat import interleaved_rounds


class WorkerFailed(RuntimeError):
    """The worker process died or answered nonsense; the message carries its stderr's tail."""


class Worker:
    """One contender in its own process. ``not_run`` holds the reason when it cannot run here."""

    def __init__(self, spec: dict, timeout_s: float = 600.0):
        self.spec = spec
        self._log = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "deploycc.verify.workers", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=_child_env(),
        )
        self._timeout = timeout_s
        hello = self._answer()
        self.not_run: str | None = hello.get("not_run")
        self.rss_before_open_mb: float = hello.get("rss_before_open_mb", 0.0)

    def runs(self, n: int) -> list[float]:
        """Run the contender ``n`` times; each run's milliseconds, timed in the worker."""
        self._ask({"runs": n})
        return list(self._answer()["ms"])

    def close(self) -> dict:
        """Stop the worker: {peak_rss_mb, rss_before_open_mb}."""
        if self.not_run is not None or self._proc.poll() is not None:
            self._proc.wait(timeout=60)
            self._log.close()
            return {}
        self._ask({"quit": 1})
        answer = self._answer()
        self._proc.wait(timeout=60)
        self._log.close()
        return answer

    def _ask(self, request: dict) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()

    def _answer(self) -> dict:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=self._timeout)
            self._log.seek(0)
            tail = self._log.read()[-2000:]
            raise WorkerFailed(f"{self.spec.get('kind')} worker exited {self._proc.returncode}: {tail}")
        return json.loads(line)


def _child_env() -> dict:
    """This environment, with the folder this deploycc was imported from first on the path, so the
    worker runs the same code whatever the current folder."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


def time_workers(workers: list[Worker], protocol: Protocol, threads: int = 0) -> list[Latency]:
    """One Latency per worker (all runnable), from interleaved rounds timed in the workers."""
    for w in workers:
        if protocol.warmup:
            w.runs(protocol.warmup)
    samples = interleaved_rounds(len(workers), protocol, lambda i, n: workers[i].runs(n))
    return [reduce_rounds(s, protocol, threads) for s in samples]


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory figure (VmRSS, VmHWM) in MB (1e6 bytes); 0 where unreadable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except OSError:
        pass
    return 0.0


def _serve(spec: dict) -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a runtime prints goes to stderr, never into the answers

    def answer(obj: dict) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    from deploycc.verify import peers

    peers.quiet_pools()
    before = _status_mb("VmRSS")
    try:
        run = peers.open_runner(spec)
    except peers.NotRunnable as exc:
        answer({"not_run": str(exc)})
        return
    answer({"rss_before_open_mb": before})
    for line in sys.stdin:
        request = json.loads(line)
        if "quit" in request:
            answer({"peak_rss_mb": _status_mb("VmHWM"), "rss_before_open_mb": before})
            return
        ms = []
        for _ in range(int(request["runs"])):
            t0 = time.perf_counter()
            run()
            ms.append((time.perf_counter() - t0) * 1e3)
        answer({"ms": ms})


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
