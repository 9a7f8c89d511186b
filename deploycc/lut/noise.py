"""The noise floor of a validation: a sample of its architectures measured a second time.

A predictor cannot be judged more finely than its ground truth repeats. ``lut validate``
re-measures ``retest`` of its architectures independently (built again and timed again into a
fresh cache, with the validation's anchor timed beside them) and scores the second measurement
against the first with the same figures as every predictor (``stats.summary``: MAPE, signed
bias, within 5/10 %, Kendall tau, ...), so that a reader sees whether a predictor is limited by
itself or by the machine.

With ratio anchoring both measurements are ratios to the same anchor network, and both are put
on one scale: the second run's ratios times the first run's anchor median. What the machine's
speed did between the runs (the two anchor medians) is reported beside, as
``speed_change_pct``; it moves every time alike and so cancels in a validation, which scales
every architecture to one anchor median.
"""

from __future__ import annotations

import tempfile

import numpy as np

from . import stats
from .anchor import ratio_reference


def retest_indices(n: int, k: int) -> list[int]:
    """``k`` architecture indices spread evenly over 1..n-1 (0 is the anchor, its ratio is ~1)."""
    if k <= 0 or n < 2:
        return []
    return sorted({round(float(x)) for x in np.linspace(1, n - 1, min(k, n - 1))})


def noise_floor(first: dict[int, float], again: dict[int, float], speed_change_pct: float | None) -> dict:
    """The test-retest figures of two measurements of the same architectures (index -> ms)."""
    idx = sorted(first)
    floor = stats.summary([again[i] for i in idx], [first[i] for i in idx])
    return floor | {
        "indices": idx,
        "first_ms": [first[i] for i in idx],
        "again_ms": [again[i] for i in idx],
        "speed_change_pct": speed_change_pct,
    }


def retest(
    measure, archs: list, records: list[dict], statistic: str, k: int, into=None, lead: bool = True
) -> dict | None:
    """Measure ``k`` of ``archs`` again with ``measure(archs, cache)`` (the validation's own
    measuring) into a fresh cache, or into ``into`` (a cache of re-measurements only, never the
    first measurement's: a resumable run keeps what it re-measured); None when ``k`` is 0.
    ``lead``: the first architecture leads the re-measured ones, as the group anchor of an
    unanchored validation (with an anchor network of its own, measuring it again buys nothing)."""
    picked = retest_indices(len(archs), k)
    if not picked:
        return None
    first_job = 1 if lead else 0
    with tempfile.TemporaryDirectory(prefix="deploycc-retest-") as fresh:
        again = measure(([archs[0]] if lead else []) + [archs[i] for i in picked], into or fresh)
    main_ref = ratio_reference(records)
    again_ref = ratio_reference(again.values())
    second = {}
    for j, i in enumerate(picked, start=first_job):
        rec = again[str(j)]
        if main_ref is not None and rec.get("ratio"):  # both on the first run's anchor median
            second[i] = rec["ratio"]["ratio"] * main_ref
        else:
            second[i] = float(rec["latency"][f"{statistic}_ms"])
    first = {i: float(records[i]["latency"][f"{statistic}_ms"]) for i in picked}
    change = 100 * (again_ref / main_ref - 1) if main_ref and again_ref else None
    return noise_floor(first, second, change)
