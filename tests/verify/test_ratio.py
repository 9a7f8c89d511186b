"""Anchored ratios: real timers over real small jobs whose speed drifts, and the interval rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deploycc.verify.measure import Protocol
from deploycc.verify.ratio import RatioRule, ratio_interval, ratio_summary, time_anchored

PROTOCOL = Protocol(warmup=1, min_repeats=3, rounds=2, reject_mad=3.0)


class Drifting:
    """A machine whose speed falls as it is used: every job's work grows by ``step`` per call of
    the anchor, so whatever is timed later in the run is timed on a slower machine."""

    def __init__(self, step: float):
        self.step, self.factor = step, 1.0
        self.a = np.random.default_rng(0).standard_normal((64, 64))

    def job(self, units: int, is_anchor: bool = False):
        def run():
            if is_anchor:
                self.factor += self.step
            for _ in range(round(units * self.factor)):
                self.a @ self.a

        return run


def test_the_ratio_cancels_a_drift_that_moves_the_raw_times():
    machine = Drifting(step=0.02)  # ~+2 % per round on every job alike
    anchor, subject = machine.job(20, is_anchor=True), machine.job(40)
    rule = RatioRule(target_pct=100.0, min_rounds=30, max_rounds=30)  # a fixed 30 rounds
    _, anchor_rounds, [(latency, ratio)] = time_anchored(anchor, [subject], PROTOCOL, rule, threads=1)
    assert anchor_rounds[-1] > 1.3 * anchor_rounds[0]  # the machine did slow down by a third or more
    assert latency.spread_pct > 30  # the subject's own rounds moved with it
    assert ratio["ratio"] == pytest.approx(2.0, rel=0.15)  # twice the anchor's work, whatever the speed
    assert ratio["rounds"] == 30 and math.isfinite(ratio["ci95_pct"])


def test_rounds_stop_when_the_interval_is_reached_and_record_it_when_not():
    machine = Drifting(step=0.0)
    anchor, subject = machine.job(5, is_anchor=True), machine.job(5)
    loose = RatioRule(target_pct=1e6, min_rounds=4, max_rounds=40)
    _, rounds, [(_, ratio)] = time_anchored(anchor, [subject], PROTOCOL, loose)
    assert len(rounds) == 4 and ratio["reached"] and ratio["rounds"] == 4  # stops at the minimum
    tight = RatioRule(target_pct=1e-9, min_rounds=3, max_rounds=6)
    _, rounds, [(_, ratio)] = time_anchored(anchor, [subject], PROTOCOL, tight)
    assert len(rounds) == 6 and not ratio["reached"] and ratio["ci95_pct"] > 1e-9  # capped, width kept


def test_the_anchor_may_run_fewer_times_per_round_than_the_subjects():
    calls = {"anchor": 0, "subject": 0}

    def counted(name):
        def run():
            calls[name] += 1

        return run

    rule = RatioRule(target_pct=1e6, min_rounds=4, max_rounds=4, anchor_runs=1)
    anchor, _, [(latency, _)] = time_anchored(counted("anchor"), [counted("subject")], PROTOCOL, rule)
    assert calls == {"anchor": 1 + 4, "subject": 1 + 4 * 3}  # warm-up, then 1 and 3 runs per round
    assert anchor.rounds == latency.rounds == 4
    assert "anchor_runs" not in RatioRule().to_dict() and rule.to_dict()["anchor_runs"] == 1  # old keys hold


def test_interval_of_recorded_ratios():
    centre, width = ratio_interval([2.0, 2.0, 2.0])
    assert centre == pytest.approx(2.0) and width == 0.0
    centre, width = ratio_interval([1.0, 4.0])  # geometric mean 2; t(0.975, 1) = 12.706
    assert centre == pytest.approx(2.0)
    assert width == pytest.approx(100 * math.expm1(12.7062 * math.log(4) / math.sqrt(2) / math.sqrt(2)), rel=1e-3)
    assert ratio_interval([3.0])[1] == math.inf
    # an outlier round is left out of the interval by the outlier rule on the log-ratios
    rec = ratio_summary([2.0, 2.02, 1.98, 2.0, 6.0], [1.0] * 5, reject_mad=3.0, rule=RatioRule(target_pct=2.0))
    assert rec["rejected"] == 1 and rec["ratio"] == pytest.approx(2.0, rel=0.01) and rec["reached"]
