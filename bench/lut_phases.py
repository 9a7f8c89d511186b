"""The phases of bench_lut.py: each finished phase stored under a key of everything it depends on,
and an estimate of the time left.

A run is a list of phases per target (``lut-isolated``, ``lut-profiled``, ``validate-isolated``,
...). :class:`PhaseStore` writes each phase's result to ``<out>/<target>/phases/<name>.json`` with
its key (a hash of the bench options that reach it, the target, deploycc's source digest and the
keys of the phases it uses) and its seconds, the moment it finishes; a later run with the same key
reuses it instead of running it again, so an interrupted run loses at most the phase it was in
(and that phase itself resumes from deploycc's per-entry, per-network and per-architecture caches).

:class:`Estimate` prints the time left: each phase costs ``units x seconds per unit``, the
rates starting from :data:`RATES` (measured, see bench_lut.py's docstring) and replaced by the
rate this run observed once a phase of that kind has run here.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

# Seconds per unit of work of the full run (SqueezeNAS small, 1x3x1024x2048, CPU clock, a quiet
# 2-core machine, --build-workers 2), projected from the phase costs measured at 1x3x784x784 (see
# bench_lut.py's docstring): loaded wall times / 2.4, compiles halved by two build processes,
# run times x 3.4 pixels, ratio rounds at their cap (60 rounds, 300 s per group). (backend, phase kind) -> seconds
# per entry (lut-isolated), network (lut-profiled) or architecture measured (validate).
RATES = {
    ("ort", "lut-isolated"): 2.3,
    ("ort", "lut-profiled"): 5.0,
    ("ort", "validate"): 29.0,
    ("tvm", "lut-isolated"): 10.5,
    ("tvm", "lut-profiled"): 16.0,
    ("tvm", "validate"): 81.0,
}


def digest(inputs: dict) -> str:
    """The key of a phase: a hash of its inputs (JSON; paths and objects by their text)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:24]


class PhaseStore:
    """Finished phases of one target, each under its key (see the module doc)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder) / "phases"

    def load(self, name: str, key: str) -> dict | None:
        """The stored record {key, seconds, result} of phase ``name`` when its key is ``key``."""
        path = self.folder / f"{name}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key and "result" in record else None

    def run(self, name: str, inputs: dict, fn) -> tuple[dict, float, bool]:
        """(result, seconds, reused) of phase ``name``: the stored one when its inputs are unchanged,
        else ``fn()`` run now and stored (atomically) before it is returned."""
        key = digest(inputs)
        stored = self.load(name, key)
        if stored is not None:
            return stored["result"], float(stored["seconds"]), True
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "seconds": seconds, "result": result}, default=str), encoding="utf-8")
        tmp.replace(path)
        return result, seconds, False


class Estimate:
    """The time left of a run: phases (target, backend, kind, units) not yet finished, at a rate each."""

    def __init__(self, phases: list[tuple[str, str, str, int]]):
        self.left = {(target, kind): (backend, units) for target, backend, kind, units in phases}
        self.rates = dict(RATES)

    def finished(self, target: str, kind: str, seconds: float, reused: bool) -> None:
        """Phase ``kind`` of ``target`` is done; a phase run here sets the rate of its kind."""
        backend, units = self.left.pop((target, kind), ("", 0))
        if not reused and units:
            self.rates[(backend, _kind(kind))] = seconds / units

    def seconds_left(self) -> float:
        left = self.left.items()
        return sum(units * self.rates.get((backend, _kind(kind)), 0.0) for (_, kind), (backend, units) in left)

    def line(self) -> str:
        return f"estimated time left: {self.seconds_left() / 60:.0f} min ({len(self.left)} phases)"


def _kind(kind: str) -> str:
    """The rate's kind of a phase: validations share one rate per backend."""
    return "validate" if kind.startswith("validate") else kind
