"""The one LUT workflow: cache first, then the timer, each record cached the moment it is measured.

Timers here are the real local one, or the real local one made to give up part way (as a fleet
run does when its last device drops); every entry is built and timed for real on cpu-ort.
"""

from __future__ import annotations

import json
import shutil

import pytest

from deploycc.lut import load_lut
from deploycc.lut.entries import template_arch
from deploycc.lut.profile import ProfileSettings, build_lut, plan, unique_specs
from deploycc.lut.timer import LocalTimer
from deploycc.lut.workflow import measure_jobs


class GivesUpAfter(LocalTimer):
    """Times here like :class:`LocalTimer`, but stops with an error after ``n`` jobs of a run."""

    def __init__(self, n: int):
        self.n = n

    def run(self, jobs, protocol, threads, report, what=""):
        super().run(jobs[: self.n], protocol, threads, report, what)
        raise RuntimeError(f"{what}: gave up after {self.n} job(s)")


def _forget(cache, specs) -> None:
    """Remove the cached records of ``specs``, as if they had never been measured."""
    for path in (cache / "entries").glob("*.json"):
        record = json.loads(path.read_text())["payload"]  # a sealed cache entry
        if any(all(record[k] == v for k, v in spec.to_dict().items()) for spec in specs):
            path.unlink()


def test_a_timer_that_fails_leaves_what_it_measured_cached(fbnet_lut, lut_cache, tmp_path, K):
    cache = tmp_path / "cache"
    shutil.copytree(lut_cache / "lut", cache)
    specs = [s for s in unique_specs(*plan(template_arch("fbnet", K.SHAPE), K.UNITS)) if not s.identity]
    forgotten = specs[:3]
    _forget(cache, forgotten)
    before = {p.name for p in (cache / "entries").glob("*.json")}
    settings = ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST)
    out = tmp_path / "lut.json"
    steps = []
    with pytest.raises(RuntimeError, match="lut build: gave up after 2 job"):
        build_lut(
            "fbnet",
            out,
            settings,
            K.SHAPE,
            statistic="min",
            cache=cache,
            units=K.UNITS,
            progress=steps.append,
            timer=GivesUpAfter(2),
        )
    assert not out.exists()
    assert [s.job for s in steps if s.event == "done"] == [s.key for s in forgotten[:2]]
    added = {p.name for p in (cache / "entries").glob("*.json")} - before
    assert len(added) == 2 and not list((cache / "entries").glob(".*tmp*"))
    # the next run times only the one entry that was never measured
    steps.clear()
    lut = build_lut("fbnet", out, settings, K.SHAPE, statistic="min", cache=cache, units=K.UNITS, progress=steps.append)
    assert [s.job for s in steps if s.event == "done"] == [forgotten[2].key]
    assert lut.entries[forgotten[0].key]["latency"]["runs"] >= K.FAST.min_repeats


def test_progress_counts_every_job_once_in_order(fbnet_lut, lut_cache, tmp_path, K):
    cache = tmp_path / "cache"
    shutil.copytree(lut_cache / "lut", cache)
    specs = unique_specs(*plan(template_arch("fbnet", K.SHAPE), K.UNITS))
    _forget(cache, [s for s in specs if not s.identity][-1:])
    steps = []
    lut = build_lut(
        "fbnet",
        tmp_path / "lut.json",
        ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST),
        K.SHAPE,
        statistic="min",
        cache=cache,
        units=K.UNITS,
        progress=steps.append,
    )
    assert [s.done for s in steps] == list(range(1, len(specs) + 1))
    assert all(s.total == len(specs) and s.record is not None and s.device is None for s in steps)
    assert sorted(s.job for s in steps) == sorted(s.key for s in specs)
    assert [s.event for s in steps].count("done") == 1 and steps[-1].event == "done"
    assert list(lut.entries) == [s.key for s in specs]  # the LUT keeps the space's order
    assert lut.entries.keys() == load_lut(fbnet_lut).entries.keys()


def test_a_timer_must_measure_what_it_is_handed(lut_cache, tmp_path, K):
    class Idle(LocalTimer):
        def run(self, jobs, protocol, threads, report, what=""):
            return None

    from deploycc.lut.profile import entry_job
    from deploycc.targets import load_target

    arch = template_arch("fbnet", K.SHAPE)
    spec = next(s for s in unique_specs(*plan(arch, ["k3_e1"])) if not s.identity)
    settings = ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST)
    job = entry_job(spec, arch, load_target("cpu-ort"), settings)
    with pytest.raises(RuntimeError, match=f"Idle returned without measuring {spec.key}"):
        measure_jobs(Idle(), [job], tmp_path, K.FAST, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["timing.lock"]  # no record; the timing lock stays
