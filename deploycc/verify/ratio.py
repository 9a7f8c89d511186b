"""Anchored ratios: each subject timed as a ratio to an anchor run in the same rounds.

On a virtual machine whose host lends the core's speed elsewhere, the whole CPU drifts 15-20 %
between sets of runs while the load figures see nothing. A drift that slows every kernel alike
cancels in the ratio of two things timed seconds apart. So :func:`time_anchored` times an
*anchor* (a fixed network) and the subjects in interleaved rounds, the order rotating from round
to round; each round gives one value per callable (the median, or the minimum for statistic
``min``, of its ``protocol.min_repeats`` runs) and, per subject, the ratio of its value to the
anchor's value in the same round. Rounds continue until every subject's ratio is known to
``rule.target_pct`` (the half-width of the 95 % interval of the ratio, :func:`ratio_interval`),
with at least ``rule.min_rounds`` and at most ``rule.max_rounds`` rounds or ``rule.max_seconds``;
the width reached is recorded either way. Rounds whose log-ratio lies more than
``protocol.reject_mad`` scaled MADs from the median are left out of the interval (the outlier
rule of ``measure.kept_rounds``).

The subject's time is then ``ratio x the anchor's median round value over the whole run`` (all
groups; ``deploycc.lut.anchor.ratio_scale_all``): the drift between rounds and between groups
both cancel, and only the anchor's own median carries the machine's speed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .measure import Protocol, kept_rounds, reduce_rounds
from .repeat import interleaved_rounds, warmed_runner


@dataclass(frozen=True)
class RatioRule:
    """When the rounds of an anchored measurement stop."""

    target_pct: float = 1.0  # the 95 % interval's half-width to reach, in % of the ratio
    min_rounds: int = 5
    max_rounds: int = 60
    max_seconds: float = 300.0  # per group of subjects
    # runs of the anchor per round (default: the protocol's min_repeats, as every subject); an
    # isolated LUT entry worth a few ms against a whole network takes 1 (``lut/anchored.py``)
    anchor_runs: int | None = None

    def __post_init__(self):
        if self.target_pct <= 0 or not 2 <= self.min_rounds <= self.max_rounds:
            raise ValueError("ratio rule: target_pct > 0 and 2 <= min_rounds <= max_rounds")
        if self.anchor_runs is not None and self.anchor_runs < 1:
            raise ValueError("ratio rule: anchor_runs >= 1")

    def to_dict(self) -> dict:
        """The fields; ``anchor_runs`` only when set, so the keys of earlier ratio records hold."""
        d = asdict(self)
        if d["anchor_runs"] is None:
            del d["anchor_runs"]
        return d


def ratio_interval(ratios) -> tuple[float, float]:
    """(geometric mean, half-width of its 95 % interval in %) of per-round ratios.

    The interval is Student's t on the log-ratios (a slowdown multiplies): ``exp(t * se) - 1``.
    One ratio gives an infinite width."""
    from scipy.stats import t as student_t

    logs = np.log(np.asarray(ratios, dtype=np.float64))
    centre = float(math.exp(logs.mean())) if logs.size else math.nan
    if logs.size < 2:
        return centre, math.inf
    se = float(logs.std(ddof=1)) / math.sqrt(logs.size)
    return centre, 100.0 * math.expm1(float(student_t.ppf(0.975, logs.size - 1)) * se)


def ratio_summary(subject_rounds, anchor_rounds, reject_mad: float, rule: RatioRule) -> dict:
    """The ratio record of one subject from its and the anchor's per-round values."""
    ratios = np.asarray(subject_rounds, dtype=np.float64) / np.asarray(anchor_rounds, dtype=np.float64)
    keep = kept_rounds(np.log(ratios), reject_mad)
    estimate, width = ratio_interval(ratios[keep])
    return {
        "ratio": estimate,
        "ci95_pct": width,
        "rounds": int(ratios.size),
        "rejected": int((~keep).sum()),
        "target_pct": rule.target_pct,
        "reached": bool(width <= rule.target_pct),
    }


def _round_value(runs: list[float], statistic: str) -> float:
    return float(np.median(runs) if statistic == "median" else np.min(runs))


def time_anchored(anchor, fns: list, protocol: Protocol, rule: RatioRule = RatioRule(), threads: int = 0):
    """(anchor Latency, anchor round values, [(subject Latency, ratio record), ...]) of ``fns``
    timed against ``anchor`` in rounds until every ratio's interval meets ``rule``."""
    every = [anchor, *fns]

    def stop(samples, seconds: float) -> bool:
        return len(samples[0]) >= rule.min_rounds and (
            seconds > rule.max_seconds or _all_reached(samples, protocol, rule)
        )

    runner = warmed_runner(every, protocol)

    def timed_runs(i: int, count: int) -> list[float]:
        return runner(i, rule.anchor_runs if i == 0 and rule.anchor_runs else count)

    # callable -> round -> runs (ms), in the rotating rounds of every interleaved measurement
    samples = interleaved_rounds(len(every), protocol, timed_runs, stop, rule.max_rounds)
    values = [[_round_value(runs, protocol.statistic) for runs in rounds] for rounds in samples]
    out = [
        (reduce_rounds(samples[i], protocol, threads), ratio_summary(values[i], values[0], protocol.reject_mad, rule))
        for i in range(1, len(every))
    ]
    return reduce_rounds(samples[0], protocol, threads), values[0], out


def _all_reached(samples, protocol: Protocol, rule: RatioRule) -> bool:
    anchor = [_round_value(runs, protocol.statistic) for runs in samples[0]]
    for rounds in samples[1:]:
        mine = [_round_value(runs, protocol.statistic) for runs in rounds]
        if not ratio_summary(mine, anchor, protocol.reject_mad, rule)["reached"]:
            return False
    return True
