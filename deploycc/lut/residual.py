"""A learned residual beside the affine correction: what the LUT sum misses, from unit features.

The fusion correction (``correction.py``) models the residual ``measured - LUT sum`` by the
boundaries between unit families; the affine calibration by a scale and an offset. Here a small
regression learns it from what each unit is: its GMACs, the megabytes it moves (input, output and
weights in float32), its kind (``g1``, ``g2`` or ``skip``, as in the correction), its input
resolution (megapixels), its position in the network (0 at the first searchable layer, 1 at the
last) and its own LUT entry. Only whole-architecture residuals are measured, so the per-unit
model is linear and each architecture's features are the sums of its units' features:
``residual(arch) = sum over units u of w . phi(u) + c``. The fit is scikit-learn's ridge
regression on standardized features, the strength chosen by leave-one-out error
(``RidgeCV``), on the training architectures only; ``lut validate`` scores it on the held-out
ones beside the other predictors.
"""

from __future__ import annotations

import numpy as np

from .correction import family

KINDS = ("g1", "g2", "skip")
PER_KIND = ("count", "gmacs", "mb", "mpix", "position", "entry_ms")
ALPHAS = tuple(float(a) for a in np.logspace(-3, 3, 13))


def feature_names() -> list[str]:
    return [f"{kind}.{name}" for kind in KINDS for name in PER_KIND]


def unit_features(predictor, idx: np.ndarray, costs: dict) -> np.ndarray:
    """phi(layer, candidate) as an array (layers, candidates, features) for the units that occur in
    ``idx``; 0 for an identity unit and every other. ``costs`` caches (GMACs, MB) per unit shape
    (``friendliness.unit_cost``)."""
    from .friendliness import unit_cost

    lut = predictor.lut
    per_kind = len(PER_KIND)
    phi = np.zeros((len(lut.layers), len(predictor.codes), len(KINDS) * per_kind))
    last = max(len(lut.layers) - 1, 1)
    for li, ci in sorted({(li, int(ci)) for row in np.asarray(idx) for li, ci in enumerate(row)}):
        layer, code = lut.layers[li], predictor.codes[ci]
        key = layer["candidates"][code]
        if not lut.entries[key].get("measured", True):
            continue  # an identity unit compiles to nothing
        gmacs, mb = unit_cost(lut, layer, code, costs)
        k = KINDS.index(family(code)) * per_kind
        values = (1.0, gmacs, mb, layer["in_h"] * layer["in_w"] / 1e6, li / last, lut.entry_ms(key))
        phi[li, ci, k : k + per_kind] = values
    return phi


def arch_features(phi: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Each architecture's features: the sum of its units' (``idx``: (N, layers) candidate indices)."""
    layers = np.arange(phi.shape[0])
    return np.stack([phi[layers, row].sum(axis=0) for row in np.asarray(idx)])


class LearnedResidual:
    """Ridge regression of ``measured - raw`` on summed unit features (scikit-learn)."""

    def __init__(self, predictor, idx: np.ndarray, costs: dict | None = None):
        """Features of every unit in ``idx`` (all architectures it will fit on or predict)."""
        self.predictor = predictor
        self.phi = unit_features(predictor, idx, {} if costs is None else costs)
        self.model = None

    def fit(self, idx: np.ndarray, raw, measured) -> LearnedResidual:
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X = arch_features(self.phi, idx)
        target = np.asarray(measured, dtype=np.float64) - np.asarray(raw, dtype=np.float64)
        self.model = make_pipeline(StandardScaler(), RidgeCV(alphas=ALPHAS)).fit(X, target)
        return self

    def apply(self, idx: np.ndarray, raw) -> np.ndarray:
        """The LUT sum plus the learned residual of each architecture."""
        if self.model is None:
            raise RuntimeError("LearnedResidual.apply before fit")
        return np.asarray(raw, dtype=np.float64) + self.model.predict(arch_features(self.phi, idx))

    def to_dict(self) -> dict:
        """The chosen strength and the weight per feature (ms per unit of the raw feature)."""
        if self.model is None:
            return {}
        scaler, ridge = self.model[0], self.model[-1]
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        weights = ridge.coef_ / scale
        return {
            "model": "sklearn RidgeCV on standardized summed unit features",
            "alpha": float(ridge.alpha_),
            "intercept_ms": float(ridge.intercept_ - np.sum(weights * scaler.mean_)),
            "weights": {n: float(w) for n, w in zip(feature_names(), weights)},
        }
