"""Latency prediction from a LUT, vectorized for search loops, with measurement on request.

``Predictor`` turns the LUT into a dense table ``T[layer, candidate]`` (NaN where a candidate is
illegal at that layer) plus a constant (stem + head). A batch of architectures is an integer
array of candidate indices, so predicting a million genotypes is one gather and one sum:

* ``predict(genotypes)``: LUT sums, for lists of unit codes or an index array (N, L);
* ``expected(probs)``: the differentiable expectation sum_l sum_j p_lj T[l, j] used by
  FBNet/ProxylessNAS-style searches, for probability arrays (N, L, C) or (L, C);
* ``measure(genotype)``: build the architecture on the LUT's target and time it end to end,
  for searches that want the ground truth on their final candidates (NetAdaptV2, HURRICANE);
* an optional fitted correction (:mod:`deploycc.lut.correction`) is applied on top.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deploycc.core.errors import UserError

from .table import LUT


class Predictor:
    """``space``: a reduced search space (``lut/space.py``); units it leaves out of a layer are
    illegal there, as if the LUT had no entry for them."""

    def __init__(self, lut: LUT, correction=None, space=None):
        from deploycc.models import unit_codes

        self.lut = lut
        self.codes = unit_codes(lut.space)
        self.index = {c: i for i, c in enumerate(self.codes)}
        self.table = np.full((len(lut.layers), len(self.codes)), np.nan)
        if space is not None:
            space.check_fits(lut.space, lut.backbone, len(lut.layers), f"the LUT {lut.source}")
        self.allowed = [
            [c for c in layer["candidates"] if space is None or c in space.layers[li]]
            for li, layer in enumerate(lut.layers)
        ]
        for li, layer in enumerate(lut.layers):
            for code in self.allowed[li]:
                self.table[li, self.index[code]] = lut.entry_ms(layer["candidates"][code])
        self.base = lut.base_ms()
        self.correction = correction

    @property
    def num_layers(self) -> int:
        return self.table.shape[0]

    def encode(self, genotypes) -> np.ndarray:
        """Index array (N, L) for a list of genotypes (lists of unit codes); checks legality."""
        rows = []
        for n, geno in enumerate(genotypes):
            geno = list(geno)
            if len(geno) != self.num_layers:
                raise UserError(f"architecture {n}: {len(geno)} units, the LUT's space has {self.num_layers} layers")
            row = []
            for li, code in enumerate(geno):
                if code not in self.index or np.isnan(self.table[li, self.index[code]]):
                    raise UserError(
                        f"architecture {n}: unit {code!r} at layer {li} is outside the LUT's space "
                        f"(legal there: {', '.join(self.allowed[li])})"
                    )
                row.append(self.index[code])
            rows.append(row)
        return np.asarray(rows, dtype=np.int64).reshape(len(rows), self.num_layers)

    def raw(self, genotypes) -> np.ndarray:
        """Plain LUT sums in ms, for genotypes (codes) or an index array (N, L)."""
        idx = self._indices(genotypes)
        per_layer = self.table[np.arange(self.num_layers)[None, :], idx]
        if np.isnan(per_layer).any():
            bad = np.argwhere(np.isnan(per_layer))[0]
            raise UserError(
                f"architecture {bad[0]}: candidate index {idx[bad[0], bad[1]]} is illegal at layer {bad[1]}"
            )
        return self.base + per_layer.sum(axis=1)

    def predict(self, genotypes) -> np.ndarray:
        """LUT sums, with the correction applied when the predictor has one."""
        idx = self._indices(genotypes)
        raw = self.raw(idx)
        return raw if self.correction is None else self.correction.apply(self, idx, raw)

    def expected(self, probs) -> np.ndarray:
        """E[latency] = base + sum_l sum_j p_lj T[l, j] for probabilities (N, L, C) or (L, C)."""
        p = np.asarray(probs, dtype=np.float64)
        single = p.ndim == 2
        p = p[None] if single else p
        if p.shape[1:] != self.table.shape:
            raise UserError(
                f"probabilities have shape {p.shape[1:]}, the LUT needs (layers, candidates) = {self.table.shape}"
            )
        table = np.nan_to_num(self.table, nan=0.0)
        if np.any(p[:, np.isnan(self.table)] > 0):
            raise UserError("probabilities put weight on a candidate that is illegal at its layer")
        out = self.base + np.einsum("nlc,lc->n", p, table)
        return out[0] if single else out

    def breakdown(self, genotype) -> list[tuple[str, str, float]]:
        """(part, entry key, ms) for the stem, each layer and the head of one genotype."""
        idx = self.encode([genotype])[0]
        context = self.lut.mode == "in-context"
        rows = [
            (
                "reference" if context else "stem",
                self.lut.stem,
                self.base if context else self.lut.entry_ms(self.lut.stem),
            )
        ]
        for li, ci in enumerate(idx):
            key = self.lut.layers[li]["candidates"][self.codes[ci]]
            rows.append((f"layer {li}: {self.codes[ci]}", key, float(self.table[li, ci])))
        if not context:
            rows.append(("head", self.lut.head_entry, self.lut.entry_ms(self.lut.head_entry)))
        return rows

    def check_arch(self, arch) -> None:
        """UserError unless ``arch`` belongs to the LUT's space, backbone, head and input shape."""
        lut = self.lut
        for what, mine, theirs in (
            ("space", arch.space, lut.space),
            ("backbone", arch.backbone, lut.backbone),
            ("head", arch.head, lut.head),
            ("classes", arch.num_classes, lut.num_classes),
            ("input shape", tuple(arch.input_shape), tuple(lut.input_shape)),
        ):
            if mine != theirs:
                raise UserError(
                    f"{arch.source}: architecture {arch.name!r} is outside the LUT's space: "
                    f"{what} {_fmt(mine)}, the LUT ({lut.source}) is for {_fmt(theirs)}"
                )
        self.encode([arch.genotype])

    def predict_arch(self, arch) -> float:
        self.check_arch(arch)
        return float(self.predict([arch.genotype])[0])

    def measure(self, genotype, workdir: str | Path | None = None, protocol=None) -> float:
        """Build ``genotype`` on the LUT's target and time it end to end (ms, the LUT's statistic)."""
        from .measure_arch import measure_arch

        arch = self.arch_of(genotype)
        return measure_arch(arch, self.lut, protocol=protocol, cache=workdir)["latency"][f"{self.lut.statistic}_ms"]

    def arch_of(self, genotype, name: str = "candidate"):
        """The architecture of ``genotype`` in the LUT's space at the LUT's input shape."""
        from deploycc.models import parse_arch

        d = {
            "format": "deploycc-arch",
            "version": 1,
            "name": name,
            "space": self.lut.space,
            "genotype": list(genotype),
            "num_classes": self.lut.num_classes,
            "input_shape": list(self.lut.input_shape),
        }
        if self.lut.space == "squeezenas":
            d["backbone"], d["head"] = self.lut.backbone, self.lut.head
        elif self.lut.head:
            d["head"] = self.lut.head
        self.encode([genotype])
        return parse_arch(d, source=name)

    def _indices(self, genotypes) -> np.ndarray:
        if isinstance(genotypes, np.ndarray) and genotypes.dtype.kind in "iu":
            idx = genotypes.reshape(-1, self.num_layers) if genotypes.ndim == 1 else genotypes
            if idx.shape[1] != self.num_layers or idx.min(initial=0) < 0 or idx.max(initial=0) >= len(self.codes):
                raise UserError(
                    f"index array of shape {genotypes.shape} does not fit the LUT "
                    f"({self.num_layers} layers, {len(self.codes)} candidates)"
                )
            return idx
        return self.encode(genotypes)


def _fmt(v) -> str:
    return "x".join(map(str, v)) if isinstance(v, tuple) else repr(v)
