"""Fusion-aware correction of LUT sums, learned from a few measured architectures.

Why the plain LUT sum is off: every entry was timed alone, so it pays for getting its input in
and its output out (layout reorders such as ONNX Runtime's NCHW <-> NCHWc, output allocation,
the per-call overhead), while inside the compiled network adjacent units hand tensors over
directly, fuse across the unit boundary, or need a reorder only where the two sides disagree on
layout. That cost depends on which kinds of units meet at a boundary and on the size of the
tensor between them, in the spirit of nn-Meter's fusion rules (T(a) + T(b) - T(a, b) per pair).

Model: residual m - p = sum over boundaries of beta[family(left) > family(right)] * MB(boundary)
+ gamma * (number of timed entries), where family is the unit's kind at its edges (``g1``: an
inverted residual whose 1x1 convs are dense, ``g2``: grouped 1x1 convs, ``skip``: a skip unit that
computes something, ``stem``, ``head``; identity units pass the tensor through and are not
boundaries) and MB the boundary tensor's size. The coefficients are fitted by ridge regression
on standardized features, the ridge strength chosen by leave-one-out error on the training
architectures only; evaluation is on held-out architectures (``deploycc.lut.validate``).
"""

from __future__ import annotations

import numpy as np

from deploycc.core.errors import UserError

ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def family(code: str) -> str:
    if code in ("stem", "head"):
        return code
    if code == "skip":
        return "skip"
    return "g2" if "g2" in code else "g1"


class FusionCorrection:
    def __init__(self, names: list[str], weights, mean, scale, intercept: float, alpha: float):
        self.names, self.alpha, self.intercept = list(names), float(alpha), float(intercept)
        self.weights, self.mean, self.scale = (np.asarray(v, dtype=np.float64) for v in (weights, mean, scale))

    # -- features -------------------------------------------------------------------------
    @staticmethod
    def feature_names(predictor) -> list[str]:
        fams = sorted({family(c) for c in predictor.codes})
        left, right = ["stem", *fams], [*fams, "head"]
        return [f"{a}>{b}" for a in left for b in right] + ["entries"]

    @staticmethod
    def features(predictor, idx: np.ndarray) -> np.ndarray:
        names = FusionCorrection.feature_names(predictor)
        col = {n: i for i, n in enumerate(names)}
        lut, codes = predictor.lut, predictor.codes
        out_mb = [_mb(layer) for layer in lut.layers]
        stem_mb = lut.layers[0]["c_in"] * lut.layers[0]["in_h"] * lut.layers[0]["in_w"] * 4 / 1e6
        X = np.zeros((len(idx), len(names)))
        for n, row in enumerate(idx):
            left, size = "stem", stem_mb
            for li, ci in enumerate(row):
                code = codes[ci]
                entry = lut.entries[lut.layers[li]["candidates"][code]]
                if not entry.get("measured", True):  # identity: the tensor passes through
                    continue
                X[n, col[f"{left}>{family(code)}"]] += size
                X[n, col["entries"]] += 1
                left, size = family(code), out_mb[li]
            X[n, col[f"{left}>head"]] += size
        return X

    # -- fit / apply ------------------------------------------------------------------------
    @classmethod
    def fit(cls, predictor, idx: np.ndarray, raw, measured) -> FusionCorrection:
        X = cls.features(predictor, idx)
        r = np.asarray(measured, dtype=np.float64) - np.asarray(raw, dtype=np.float64)
        if len(r) < 3:
            raise UserError(f"a fusion correction needs at least 3 training architectures, got {len(r)}")
        mean, scale = X.mean(0), X.std(0)
        scale[scale == 0] = 1.0
        Z = (X - mean) / scale
        best = min(ALPHAS, key=lambda a: _loo_error(Z, r, a))
        w, b = _ridge(Z, r, best)
        return cls(cls.feature_names(predictor), w, mean, scale, b, best)

    def apply(self, predictor, idx: np.ndarray, raw) -> np.ndarray:
        Z = (self.features(predictor, idx) - self.mean) / self.scale
        return np.asarray(raw, dtype=np.float64) + Z @ self.weights + self.intercept

    def terms_ms_per_mb(self) -> dict[str, float]:
        """The fitted boundary costs in the features' own units (ms per MB; ms per entry)."""
        return {n: float(w / s) for n, w, s in zip(self.names, self.weights, self.scale)}

    def to_dict(self) -> dict:
        return {
            "kind": "fusion-boundary-ridge",
            "alpha": self.alpha,
            "intercept": self.intercept,
            "features": self.names,
            "weights": self.weights.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> FusionCorrection:
        return cls(d["features"], d["weights"], d["mean"], d["scale"], d["intercept"], d["alpha"])


def _mb(layer: dict) -> float:
    h, w = layer["in_h"], layer["in_w"]
    if layer["stride"] == 2:
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    return layer["c_out"] * h * w * 4 / 1e6


def _ridge(Z: np.ndarray, r: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge on centred data; the intercept is the mean residual (not penalized)."""
    b = float(r.mean())
    A = Z.T @ Z + alpha * np.eye(Z.shape[1])
    return np.linalg.solve(A, Z.T @ (r - b)), b


def _loo_error(Z: np.ndarray, r: np.ndarray, alpha: float) -> float:
    errs = []
    for i in range(len(r)):
        keep = np.arange(len(r)) != i
        w, b = _ridge(Z[keep], r[keep], alpha)
        errs.append(r[i] - (Z[i] @ w + b))
    return float(np.mean(np.square(errs)))
