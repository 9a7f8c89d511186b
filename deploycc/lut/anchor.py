"""Anchored measurements: one fixed job timed in every interleaved group, to take out the drift
between groups.

Interleaving (``verify/repeat.py``) spreads a disturbance over the jobs timed together, but a
LUT build or a validation times its jobs in many groups, minutes apart, and on a shared machine
the speed of the whole machine drifts between them (measured: two builds of the same entries
whose later group ran 40-60 % slower throughout, while the earlier groups agreed within 10 %).
So the local timer times one *anchor* job (the stem entry of a LUT built ``--no-anchor``, the
anchor network of a validation (``anchored.py``), the reference network of an in-context LUT) in every group,
interleaved with the others, and each record keeps the anchor's time in its group. Here every
record's figures are scaled by ``anchor_reference / anchor_in_its_group``, where the reference is
the median of the anchor's times over all groups: a group that ran 40 % slow throughout is
scaled back. The raw figures stay in the record (``latency_raw``).

This assumes a slowdown scales every kernel alike (true of a core shared with other processes or
a clock change; only roughly of contention for memory bandwidth), so it corrects drift, not the
noise within a group, which the rounds and the outlier rule handle.

Ratio anchoring (``verify/ratio.py``, the default of ``lut validate``) goes further: the anchor
is timed in every *round*, each record keeps its ratio to the anchor of the same rounds and the
anchor's round values, and its time is the ratio times the anchor's median over all groups of
the run (:func:`ratio_scale_all`), so drift within a group cancels too.
"""

from __future__ import annotations

import numpy as np

MS_FIELDS = ("median_ms", "p90_ms", "p99_ms", "min_ms", "mean_ms", "stdev_ms")


def anchor_reference(records, statistic: str) -> float | None:
    """The median anchor time over the groups the ``records`` were timed in (None: unanchored)."""
    # one value per group: the records of a group share their anchor's measurement
    values = sorted({r["anchor"]["latency"][f"{statistic}_ms"] for r in records if r.get("anchor")})
    return float(np.median(values)) if values else None


def scaled(record: dict, statistic: str, reference: float | None) -> dict:
    """``record`` with its latency scaled to the anchor reference (unchanged when unanchored)."""
    anchor = record.get("anchor")
    if not anchor or reference is None or "latency" not in record:
        return record
    factor = reference / anchor["latency"][f"{statistic}_ms"]
    latency = dict(record["latency"])
    for name in MS_FIELDS:
        if name in latency:
            latency[name] = latency[name] * factor
    return {**record, "latency": latency, "latency_raw": record["latency"], "anchor_factor": round(factor, 5)}


def scale_all(records: dict[str, dict], statistic: str) -> dict[str, dict]:
    """Every record of a run scaled to the run's anchor reference."""
    reference = anchor_reference(records.values(), statistic)
    return {k: scaled(r, statistic, reference) for k, r in records.items()}


def ratio_reference(records) -> float | None:
    """The anchor's median round value over the whole run: every group's rounds together (None:
    no record was measured as a ratio). Records of one group share their anchor's rounds."""
    groups = {tuple(r["anchor"]["round_ms"]) for r in records if r.get("anchor", {}).get("round_ms")}
    values = [v for group in groups for v in group]
    return float(np.median(values)) if values else None


def ratio_scaled(record: dict, statistic: str, reference: float | None) -> dict:
    """``record`` with its time set to (its ratio to the anchor) x ``reference``; every figure of
    its latency is scaled by the same factor, so their order holds. Unchanged without a ratio."""
    ratio = record.get("ratio")
    if ratio is None or reference is None or "latency" not in record:
        return record
    factor = ratio["ratio"] * reference / record["latency"][f"{statistic}_ms"]
    latency = {k: (v * factor if k in MS_FIELDS else v) for k, v in record["latency"].items()}
    return {**record, "latency": latency, "latency_raw": record["latency"], "anchor_factor": round(factor, 5)}


def ratio_scale_all(records: dict[str, dict], statistic: str) -> dict[str, dict]:
    """Every record measured as a ratio set to ratio x the run's anchor median; others scaled by
    their group's anchor (:func:`scale_all`)."""
    reference = ratio_reference(records.values())
    if reference is None:
        return scale_all(records, statistic)
    return {k: ratio_scaled(r, statistic, reference) for k, r in records.items()}
