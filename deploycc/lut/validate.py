"""Validate a LUT: sample architectures, build and time each end to end, score the prediction.

The architectures are timed by a timer (here by default; a device fleet plugs in as
``deploycc.fleet.lut.FleetTimer``) through the one workflow (``workflow.measure_jobs``).
Scores (``deploycc.lut.stats``) for five predictors side by side, on held-out architectures:
the raw LUT sum, the fusion-aware correction, the affine calibration a * LUT + b, the learned
residual (``residual.py``) and the MAC-count baseline a * GMACs + b, all but the first fitted on
the training architectures only (the first ``train`` of the sample). The ground truth is
anchored (each architecture's ratio to the LUT's anchor network, ``verify/ratio.py``, put on the
LUT's scale when the LUT was built anchored: ``anchored.py``) unless turned off, and
``plan.retest`` architectures are measured a second time for the noise floor (``noise.py``). The raw
LUT is also scored over the whole sample, since it learns nothing from it. Per-unit residuals
(least squares of the raw residual on per-code unit counts) show which units the LUT misjudges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deploycc.core.errors import UserError
from deploycc.targets import load_target
from deploycc.verify.measure import machine_facts
from deploycc.verify.ratio import RatioRule

from . import stats
from .anchor import ratio_reference
from .anchored import anchor_median, lut_anchor, mixing_warning, on_lut_scale, speed_change_pct
from .correction import FusionCorrection
from .measure_arch import arch_protocol, measure_archs, sample_genotypes
from .noise import retest
from .predict import Predictor
from .profile import toolchain_versions
from .residual import LearnedResidual
from .table import LUT, check_compatible
from .timer import LocalTimer, Timer


@dataclass
class ValidationPlan:
    n: int = 50
    seed: int = 0
    train: int | None = None  # default: 40 % of n (at least 3)
    allow_mismatch: bool = False
    anchored: bool = True  # each architecture as its ratio to the anchor (verify/ratio.py)
    retest: int = 8  # architectures measured a second time: the noise floor (0: none)
    retest_cache: str | None = None  # where re-measurements are cached (default: a fresh folder per run)

    def n_train(self) -> int:
        k = self.train if self.train is not None else max(3, round(0.4 * self.n))
        if not 3 <= k <= self.n - 2:
            raise UserError(f"--train {k}: needs at least 3 training and 2 held-out architectures (--n {self.n})")
        return k


def validate(
    lut: LUT, plan: ValidationPlan, cache=None, protocol=None, progress=None, timer: Timer | None = None
) -> dict:
    """Measure ``plan.n`` sampled architectures and score the LUT; returns the full report data.

    ``timer`` times the architectures (default: :class:`LocalTimer`, here); ``progress`` is
    called as ``progress(step)`` (a ``workflow.Step``) after each architecture."""
    timer = timer or LocalTimer()
    target = load_target(lut.target["name"])
    allowed = check_compatible(lut, target, toolchain_versions(target), plan.allow_mismatch)
    n_train = plan.n_train()
    protocol = protocol or arch_protocol(lut)
    timer.check_validate(lut, protocol)
    predictor = Predictor(lut)
    genotypes = sample_genotypes(lut, plan.n, plan.seed)
    if len(genotypes) < plan.n:
        raise UserError(f"--n {plan.n}: the space has only {len(genotypes)} distinct architectures")
    archs = [predictor.arch_of(geno, name=f"sample-{plan.seed}-{i}") for i, geno in enumerate(genotypes)]
    ratio = RatioRule() if plan.anchored else None
    anchor = predictor.arch_of(lut_anchor(lut), name="anchor") if plan.anchored else None

    def measure(some: list, into) -> dict:
        return measure_archs(timer, some, lut, protocol, into, progress, "lut validate", ratio, anchor).records

    measured = measure_archs(timer, archs, lut, protocol, cache, progress, "lut validate", ratio, anchor)
    records = list(measured.records.values())
    facts = anchoring_facts(records, ratio) | lut_scale_facts(lut, records, plan.anchored)
    latencies = np.array([ground_truth(r, lut, facts["scale"]) for r in records])
    floor = retest(measure, archs, records, lut.statistic, plan.retest, plan.retest_cache, lead=anchor is None)
    return (
        score(predictor, genotypes, latencies, n_train)
        | {"noise_floor": floor}
        | {"anchoring": facts}
        | result_header(lut, plan, allowed)
        | timer.result_fields(measured.summary, len(measured.cached), records)
        | {
            "build_seconds": [r.get("build_seconds") for r in records],
            "load_average": [r.get("load_average") for r in records],
        }
    )


def anchoring_facts(records: list[dict], ratio: RatioRule | None) -> dict:
    """How the ground truth was anchored: the rule, the anchor median and the widths reached."""
    widths = [r["ratio"]["ci95_pct"] for r in records if r.get("ratio")]
    return {
        "mode": "ratio" if ratio and widths else "group" if any(r.get("anchor") for r in records) else "none",
        "rule": ratio.to_dict() if ratio else None,
        "anchor_median_ms": ratio_reference(records),
        "ci95_pct_median": float(np.median(widths)) if widths else None,
        "ci95_pct_max": float(np.max(widths)) if widths else None,
        "reached": sum(bool(r["ratio"]["reached"]) for r in records if r.get("ratio")),
    }


def lut_scale_facts(lut: LUT, records: list[dict], anchored: bool) -> dict:
    """Which scale the ground truth is on: the LUT's (both anchored to one network: each ratio x the
    LUT's anchor median, so the speed change since the build cancels) or this run's own; the speed
    change; a warning when only one side is anchored (``anchored.mixing_warning``)."""
    measured_anchored = anchored and any(r.get("ratio") for r in records)  # a fleet times no anchor
    on_lut = bool(measured_anchored and lut.anchoring)
    run_median = ratio_reference(records)
    return {
        "scale": "lut" if on_lut else "run",
        "lut_anchor_median_ms": anchor_median(lut),
        "speed_change_pct": speed_change_pct(lut, run_median) if on_lut else None,
        "warning": mixing_warning(lut, measured_anchored, "the ground truth"),
    }


def ground_truth(record: dict, lut: LUT, scale: str) -> float:
    """An architecture's measured time: on the LUT's anchor scale, or as this run measured it."""
    if scale == "lut":
        return on_lut_scale(lut, record["ratio"]["ratio"])
    return float(record["latency"][f"{lut.statistic}_ms"])


def gmacs_of(predictor: Predictor, genotypes) -> np.ndarray:
    """Multiply-accumulates (G) of each architecture at the LUT's input shape."""
    from deploycc.models import build_module, count_macs

    return np.array(
        [count_macs(build_module(predictor.arch_of(g)), predictor.lut.input_shape).total / 1e9 for g in genotypes]
    )


def score(predictor: Predictor, genotypes, measured, n_train: int) -> dict:
    """Raw, corrected and affine figures and the MAC-count baseline (held-out), plus per-architecture rows."""
    idx = predictor.encode(genotypes)
    raw = predictor.raw(idx)
    tr, te = slice(0, n_train), slice(n_train, None)
    gmacs = gmacs_of(predictor, genotypes)
    ma, mb = stats.fit_affine(gmacs[tr], measured[tr])
    correction = FusionCorrection.fit(predictor, idx[tr], raw[tr], measured[tr])
    corrected = correction.apply(predictor, idx, raw)
    a, b = stats.fit_affine(raw[tr], measured[tr])
    affine = a * raw + b
    residual = LearnedResidual(predictor, idx).fit(idx[tr], raw[tr], measured[tr])
    learned = residual.apply(idx, raw)
    rows: list[dict[str, Any]] = [
        {
            "index": i,
            "genotype": list(g),
            "split": "train" if i < n_train else "test",
            "measured_ms": float(m),
            "raw_ms": float(p),
            "corrected_ms": float(c),
            "affine_ms": float(f),
            "learned_ms": float(lr),
            "raw_error_pct": float(100 * (p - m) / m),
            "gmacs": float(q),
            "macs_ms": float(ma * q + mb),
        }
        for i, (g, m, p, c, f, lr, q) in enumerate(zip(genotypes, measured, raw, corrected, affine, learned, gmacs))
    ]
    return {
        "n": len(genotypes),
        "n_train": n_train,
        "n_test": len(genotypes) - n_train,
        "raw_all": stats.summary(raw, measured),
        "held_out": {
            "raw": stats.summary(raw[te], measured[te]),
            "corrected": stats.summary(corrected[te], measured[te]),
            "affine": stats.summary(affine[te], measured[te]),
            "learned": stats.summary(learned[te], measured[te]),
            "macs": stats.summary(ma * gmacs[te] + mb, measured[te]),
        },
        "affine": {"a": a, "b_ms": b},
        "mac_baseline": {"a_ms_per_gmac": ma, "b_ms": mb},
        "correction": correction.to_dict() | {"terms": correction.terms_ms_per_mb()},
        "learned_residual": residual.to_dict(),
        "per_unit_residuals": per_unit_residuals(predictor, idx, raw, measured),
        "worst": sorted(rows, key=lambda r: -abs(r["raw_error_pct"]))[:5],
        "architectures": rows,
    }


def per_unit_residuals(predictor: Predictor, idx: np.ndarray, raw, measured) -> list[dict]:
    """Per unit code: the least-squares share of the residual (measured - LUT) per occurrence."""
    counts = np.stack([(idx == c).sum(axis=1) for c in range(len(predictor.codes))], axis=1).astype(float)
    used = counts.sum(0) > 0
    r = np.asarray(measured) - np.asarray(raw)
    delta = np.linalg.lstsq(counts[:, used], r, rcond=None)[0]
    out = []
    for code_i, d in zip(np.flatnonzero(used), delta):
        column = predictor.table[:, code_i]
        mean_ms = float(np.mean(column[np.isfinite(column)]))  # a used code has an entry somewhere
        out.append(
            {
                "unit": predictor.codes[code_i],
                "occurrences": int(counts[:, code_i].sum()),
                "residual_ms": float(d),
                "mean_entry_ms": mean_ms,
                "residual_pct_of_entry": float(100 * d / mean_ms) if mean_ms > 0 else None,
            }
        )
    return sorted(out, key=lambda row: -abs(row["residual_ms"]))


def result_header(lut, plan, allowed: list[str]) -> dict:
    """What a validation result records about its LUT, sampling plan and machine (local or fleet)."""
    return {
        "lut": lut.source,
        "mode": lut.mode,
        "target": lut.target,
        "toolchain": lut.toolchain,
        "threads": lut.threads,
        "statistic": lut.statistic,
        "input_shape": list(lut.input_shape),
        "space": lut.space,
        "backbone": lut.backbone,
        "seed": plan.seed,
        "anchored": plan.anchored,
        "mismatch_allowed": allowed,
        "machine": machine_facts(),
        "lut_machine": lut.machine,
    }
