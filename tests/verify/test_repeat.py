"""Interleaved repeats, the outlier rule, CPU pinning and the load check."""

from __future__ import annotations

import os
import time

import pytest

from deploycc.core.errors import UserError
from deploycc.verify.conditions import LoadCheck, cpu_jitter_pct, pinned, spin_ratio, timing_cpus
from deploycc.verify.measure import Protocol, kept_rounds, time_batched
from deploycc.verify.repeat import time_interleaved


def test_outlier_rule_rejects_far_rounds_and_keeps_the_majority():
    assert kept_rounds([10.0, 10.1, 9.9, 10.0, 30.0], 3.0).tolist() == [True, True, True, True, False]
    assert kept_rounds([10.0, 10.1, 9.9, 10.0, 30.0], 0.0).all()  # rule off
    keep = kept_rounds([1.0, 1.0, 50.0, 60.0, 70.0], 0.1)
    assert keep.sum() >= 3  # never fewer than half


def test_interleaved_rounds_rotate_and_scale_with_the_work():
    order = []

    def work(name, seconds):
        def fn():
            order.append(name)
            time.sleep(seconds)

        return fn

    p = Protocol(warmup=1, min_repeats=2, rounds=4, reject_mad=3.0, max_repeats=100, statistic="min")
    short, long = time_interleaved([work("a", 0.005), work("b", 0.02)], p)  # a loaded machine only adds
    timed = order[2:]  # after one warm-up each
    assert timed[:4] == ["a", "a", "b", "b"] and timed[4:8] == ["b", "b", "a", "a"]
    assert short.rounds == long.rounds == 4 and short.runs <= 8
    assert 1.5 < long.min_ms / short.min_ms < 4.5
    assert short.spread_pct is not None and short.to_dict()["rounds"] == 4
    capped = time_interleaved([work("c", 0.0)], Protocol(warmup=0, min_repeats=2, rounds=10, max_repeats=6))[0]
    assert capped.rounds == 3 and capped.runs <= 6


def test_device_rounds_apply_the_outlier_rule():
    values = iter([5.0] * 2 + [5.0, 5.1, 4.9, 5.0, 5.0, 5.1, 40.0, 41.0, 5.0, 5.0])
    lat = time_batched(
        lambda n: [next(values) for _ in range(n)], Protocol(warmup=2, min_repeats=2, rounds=5, reject_mad=3.0)
    )
    assert lat.rounds == 5 and lat.rejected == 1 and lat.p99_ms < 6 and lat.clock == "device"


def test_pinning_restores_the_affinity_and_picks_the_last_cpus():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity on this platform")
    before = os.sched_getaffinity(0)
    cpus = timing_cpus(1)
    with pinned(cpus) as now:
        assert os.sched_getaffinity(0) == cpus and now == sorted(cpus)
    assert os.sched_getaffinity(0) == before
    assert cpus == {max(before)} and timing_cpus(len(before) + 1) is None


def test_unsteady_cpu_speed_is_flagged_with_its_jitter():
    """A CPU whose speed varies run to run (a busy VM host) is not seen by the spin ratio."""
    assert cpu_jitter_pct(reps=5, iterations=2_000) >= 0
    state = LoadCheck(max_spin_ratio=1e9, max_jitter_pct=-1).state(1)  # every machine fails a negative limit
    assert state["loaded"] and state["jitter_pct"] >= 0
    assert any(r.startswith("CPU speed unsteady: a fixed loop varied") for r in state["reasons"])
    assert not any("unsteady" in r for r in LoadCheck(max_jitter_pct=1e9).state(1)["reasons"])


def test_load_check_flags_or_refuses():
    assert spin_ratio(20_000) > 0
    strict = LoadCheck(policy="refuse", max_spin_ratio=0.01)  # every machine fails this limit
    state = strict.state(1)
    assert state["loaded"] and state["reasons"] and state["load_average"] is not None
    with pytest.raises(UserError, match="under load"):
        strict.enforce(state, "lut build")
    assert LoadCheck(policy="flag", max_spin_ratio=0.01).enforce(state, "x") is state
    with pytest.raises(UserError, match="--on-load"):
        LoadCheck(policy="sometimes")
    with pytest.raises(ValueError):
        Protocol(rounds=0)
    assert "rounds" not in Protocol().to_dict() and Protocol(rounds=3).to_dict()["rounds"] == 3
