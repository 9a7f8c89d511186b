"""How a latency predictor is scored against measured latency (docs/latency.md, "Judging a predictor").

Per architecture i: prediction p_i, measurement m_i, relative error e_i = (p_i - m_i) / m_i.
MAPE = 100 mean|e|; signed bias = 100 mean e (> 0: the LUT over-predicts); share within +-5 %
and +-10 %; RMSE in ms; Kendall tau-b and Spearman rho (scipy.stats) between p and m; the affine
calibration m ~ a p + b by least squares.
"""

from __future__ import annotations

import numpy as np

from deploycc.core.errors import UserError


def relative_errors(pred, meas) -> np.ndarray:
    p, m = _pair(pred, meas)
    return (p - m) / m


def summary(pred, meas) -> dict:
    """Every error figure of ``pred`` against ``meas`` (1-D, same length, measurements > 0)."""
    p, m = _pair(pred, meas)
    e = (p - m) / m
    return {
        "n": int(p.size),
        "mape_pct": float(100 * np.mean(np.abs(e))),
        "bias_pct": float(100 * np.mean(e)),
        "within_5_pct": float(100 * np.mean(np.abs(e) <= 0.05)),
        "within_10_pct": float(100 * np.mean(np.abs(e) <= 0.10)),
        "max_abs_error_pct": float(100 * np.max(np.abs(e))),
        "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
        "kendall_tau": _corr(_scipy_stats().kendalltau, p, m),
        "spearman_rho": _corr(_scipy_stats().spearmanr, p, m),
    }


def fit_affine(pred, meas) -> tuple[float, float]:
    """(a, b) minimizing sum (a p + b - m)^2; needs two distinct predictions."""
    p, m = _pair(pred, meas)
    if p.size < 2 or np.ptp(p) == 0:
        raise UserError("an affine calibration needs at least two architectures with different predictions")
    a, b = np.polyfit(p, m, 1)
    return float(a), float(b)


def _corr(fn, p, m) -> float | None:
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(m) == 0:
        return None  # undefined for constant data
    return float(fn(p, m)[0])


def _pair(pred, meas) -> tuple[np.ndarray, np.ndarray]:
    p, m = np.asarray(pred, dtype=np.float64).ravel(), np.asarray(meas, dtype=np.float64).ravel()
    if p.size != m.size or p.size == 0:
        raise UserError(f"need as many predictions as measurements (got {p.size} and {m.size}), at least one")
    if np.any(m <= 0) or not np.all(np.isfinite(p)) or not np.all(np.isfinite(m)):
        raise UserError("measurements must be positive and all figures finite")
    return p, m


def entry_agreement(first, second) -> dict:
    """How two LUTs of the same entries agree: per measured entry |b - a| / min(a, b), in %
    (median, 90th percentile, largest) and the share within 5 and 10 %."""
    keys = [k for k, e in first.entries.items() if e.get("measured", True) and k in second.entries]
    if not keys:
        raise UserError(f"{first.source} and {second.source} share no measured entry")
    a = np.array([first.entry_ms(k) for k in keys])
    b = np.array([second.entry_ms(k) for k in keys])
    d = 100 * np.abs(b - a) / np.minimum(a, b)
    return {
        "entries": len(keys),
        "median_pct": float(np.median(d)),
        "p90_pct": float(np.percentile(d, 90)),
        "max_pct": float(d.max()),
        "within_5_pct": float(100 * np.mean(d <= 5)),
        "within_10_pct": float(100 * np.mean(d <= 10)),
    }


def _scipy_stats():
    from scipy import stats  # here, not at import: the command line loads this module for every command

    return stats
