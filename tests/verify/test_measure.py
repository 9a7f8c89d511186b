"""The measurement protocol: statistics, stopping rules, thread pinning, machine facts."""

from __future__ import annotations

import numpy as np
import pytest

from deploycc.verify.measure import (
    Latency,
    Protocol,
    machine_facts,
    pin_threads,
    summarize,
    time_artifact,
    time_callable,
)


def test_summarize_matches_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0]
    lat = summarize(samples, stable=True, threads=2)
    assert lat.median_ms == pytest.approx(3.5)
    assert lat.min_ms == 1.0
    assert lat.mean_ms == pytest.approx(25 / 6)
    assert lat.p90_ms == pytest.approx(np.percentile(samples, 90))
    assert lat.p99_ms == pytest.approx(np.percentile(samples, 99))
    assert lat.stdev_ms == pytest.approx(np.std(samples))
    assert (lat.runs, lat.stable, lat.threads) == (6, True, 2)
    assert Latency.from_dict(lat.to_dict()) == lat
    assert lat.stat("min") == 1.0


def test_warmup_runs_are_not_timed():
    calls = []
    lat = time_callable(lambda: calls.append(1), Protocol(warmup=4, min_repeats=3, max_repeats=3))
    assert len(calls) == 4 + 3 and lat.runs == 3


@pytest.fixture
def fake_clock(monkeypatch):
    """Replace the wall clock: each run of ``tick`` lasts the next of the given milliseconds."""
    import deploycc.verify.measure as measure

    now = [0.0]
    monkeypatch.setitem(measure.CLOCKS, "wall", lambda: now[0])

    def runs(durations_ms):
        it = iter(durations_ms)
        return lambda: now.__setitem__(0, now[0] + next(it) / 1e3)

    return runs


def test_stops_once_the_median_is_stable(fake_clock):
    tick = fake_clock([2.0] * 100)
    lat = time_callable(tick, Protocol(warmup=1, min_repeats=5, max_repeats=200, rel_tol=0.01, window=3))
    # 5 runs give the first running median; 2 more complete a window of 3 equal medians
    assert lat.stable and lat.runs == 7 and lat.median_ms == pytest.approx(2.0)


def test_an_unstable_callable_runs_to_the_cap(fake_clock):
    tick = fake_clock([2.0**i for i in range(100)])  # each run twice the last: the median never settles
    lat = time_callable(tick, Protocol(warmup=0, min_repeats=3, max_repeats=12, rel_tol=0.01))
    assert not lat.stable and lat.runs == 12


def test_min_statistic_judges_stability_on_the_minimum(fake_clock):
    # a median rule would wait (the median keeps moving: 9, 5, 9, ...); the minimum is 1 from run 2 on
    tick = fake_clock([9, 1, 9, 2, 9, 3, 9, 4, 9, 5] * 10)
    lat = time_callable(
        tick, Protocol(warmup=0, min_repeats=3, max_repeats=50, rel_tol=0.01, window=4, statistic="min")
    )
    assert lat.stable and lat.runs == 6 and lat.min_ms == pytest.approx(1.0)
    tick = fake_clock([9, 1, 9, 2, 9, 3, 9, 4, 9, 5] * 10)
    lat = time_callable(tick, Protocol(warmup=0, min_repeats=3, max_repeats=8, rel_tol=0.01, window=4))
    assert not lat.stable and lat.runs == 8
    with pytest.raises(ValueError):
        Protocol(statistic="p90")


def test_cpu_clock_needs_one_thread():
    from deploycc.core.errors import UserError

    with pytest.raises(UserError, match="exactly 1 thread"):
        time_callable(lambda: None, Protocol(clock="cpu"), threads=2)
    lat = time_callable(
        lambda: sum(range(20000)), Protocol(clock="cpu", warmup=0, min_repeats=3, max_repeats=3), threads=1
    )
    assert lat.clock == "cpu" and lat.min_ms > 0


def test_machine_facts_and_thread_pinning():
    facts = machine_facts()
    assert facts["cpus"] >= 1 and "governor" in facts and "load_average" in facts
    pin_threads("tvm", 1)  # configures TVM's pool; must not raise
    pin_threads("ort", 1)  # ORT threads come from the session options: nothing to do


def test_time_artifact_through_the_session_interface(tiny_onnx, tmp_path):
    from deploycc.pipeline.pipeline import BuildOptions, build

    build(str(tiny_onnx), "cpu-ort", tmp_path / "art", BuildOptions(threads=1))
    manifest, lat = time_artifact(tmp_path / "art", Protocol(warmup=1, min_repeats=3, max_repeats=4), threads=1)
    assert manifest["backend"] == "ort" and lat.threads == 1 and 3 <= lat.runs <= 4 and lat.min_ms > 0


def test_tvm_timed_runner_leaves_the_copies_out_and_runs_the_same_model(tiny_onnx, tmp_path):
    """The timed call of a TVM artifact reuses its input tensors and leaves its outputs in TVM
    memory (no per-run copies, which ORT's run does not pay either), and still runs the model:
    the VM's output after a timed call is what ``run`` returns."""
    pytest.importorskip("tvm")
    from deploycc.core.numerics import random_feeds
    from deploycc.pipeline.pipeline import BuildOptions, build
    from deploycc.pipeline.runtime import open_artifact

    build(str(tiny_onnx), "cpu", tmp_path / "art", BuildOptions(threads=1))
    _, session = open_artifact(tmp_path / "art", 1)
    feeds = random_feeds(session.inputs, 0)
    calls = []
    real = session._vm["main"]
    session._vm = {"main": lambda *args: calls.append(args) or real(*args)}
    run = session.timed_runner(feeds)
    assert run() is None and run() is None
    assert len(calls) == 2 and calls[0][0] is calls[1][0]  # the same input tensor both times
    np.testing.assert_allclose(real(*calls[0]).numpy(), session.run(feeds)[0], rtol=1e-6)
