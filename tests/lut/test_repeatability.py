"""Two LUT builds of the same entries, each with a fresh cache, agree per entry.

Stated tolerance (docs/latency.md, "Repeatable measurement"): with the interleaved protocol, the
anchor and the CPU clock, the median per-entry disagreement is at most 10 % and nine entries in
ten disagree by at most 35 %, at 1x3x64x64 where entries take 0.03-0.3 ms (the smallest, most
noise-prone sizes), on a quiet machine: the test skips, with the reason, when the load check
(``verify/conditions.py``) finds the machine loaded. Under a load average of 10-13 it measured a
median of 21 % and a 90th percentile of 29 % (closing note of issue 12). Slow: two full builds.
"""

from __future__ import annotations

import pytest

from deploycc.lut.profile import ProfileSettings, build_lut
from deploycc.lut.stats import entry_agreement
from deploycc.verify.measure import Protocol

PROTOCOL = Protocol(
    warmup=1, min_repeats=3, max_repeats=40, rounds=5, interleave=16, reject_mad=3.0, clock="cpu", statistic="min"
)


@pytest.mark.slow
def test_two_builds_agree_within_the_stated_tolerance(tmp_path):
    from deploycc.verify.conditions import LoadCheck

    state = LoadCheck().state(1)
    if state["loaded"]:  # the tolerance is stated for a quiet machine (issue 12)
        pytest.skip(f"machine under load, the tolerance holds on a quiet one: {'; '.join(state['reasons'])}")
    settings = ProfileSettings(target="cpu-ort", threads=1, protocol=PROTOCOL)
    luts = [
        build_lut(
            "fbnet",
            tmp_path / f"{k}.json",
            settings,
            (1, 3, 64, 64),
            statistic="min",
            cache=tmp_path / f"cache{k}",
            units=["k3_e6", "k5_e1"],
        )
        for k in range(2)
    ]
    agree = entry_agreement(*luts)
    print("entry agreement of two builds:", agree)
    assert agree["entries"] >= 20
    assert agree["median_pct"] <= 10 and agree["p90_pct"] <= 35, agree


def test_agreement_figures(make_lut):
    a = make_lut(lambda spec: 1.0)
    b = make_lut(lambda spec: 1.2 if spec.code == "k3_e1" else 1.0)
    agree = entry_agreement(a, b)
    assert agree["max_pct"] == pytest.approx(20.0) and agree["median_pct"] == 0.0
