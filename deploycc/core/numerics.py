"""Numerical comparison: reference execution on ONNX Runtime and error statistics.

The reference is ONNX Runtime with *its own graph optimizations disabled*, so the oracle does not
fold or fuse anything itself (an optimizing reference could hide a wrong fold). Tolerances are
scaled to the magnitude of the reference output: ``|got - ref| <= atol_rel * max|ref| + rtol * |ref|``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from deploycc.core.errors import UserError

if TYPE_CHECKING:
    import onnxruntime as ort

_NP_TYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.BOOL: np.bool_,
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @staticmethod
    def from_dict(d: dict) -> TensorSpec:
        return TensorSpec(d["name"], tuple(d["shape"]), d["dtype"])


@dataclass(frozen=True)
class Tolerance:
    """``atol_rel`` is relative to the largest reference magnitude; ``rtol`` is element-wise."""

    atol_rel: float = 1e-4
    rtol: float = 1e-4
    min_cosine: float = 0.0
    min_argmax_agreement: float = 0.0  # INT8: share of positions whose class (argmax, axis 1) agrees

    @staticmethod
    def of(verify: dict) -> Tolerance:
        """The tolerance a target file's ``[verify]`` table sets (other keys there are not tolerances)."""
        known = Tolerance.__dataclass_fields__
        return Tolerance(**{k: float(v) for k, v in verify.items() if k in known})


@dataclass(frozen=True)
class ErrorStats:
    output: str
    max_abs: float
    mean_abs: float
    max_rel: float
    cosine: float
    ref_max_abs: float
    allowed_abs: float
    ok: bool
    argmax_agreement: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def value_specs(values) -> list[TensorSpec]:
    specs = []
    for v in values:
        tt = v.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        specs.append(TensorSpec(v.name, shape, np.dtype(_NP_TYPES.get(tt.elem_type, np.float32)).name))
    return specs


def random_feeds(specs: list[TensorSpec], seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed-seed inputs: standard normal for floats (like normalized images), zeros otherwise."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        if any(d < 0 for d in spec.shape):
            raise UserError(f"input {spec.name!r} has a dynamic shape {spec.shape}; give --input-shape")
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(dtype)
        else:
            feeds[spec.name] = np.zeros(spec.shape, dtype=dtype)
    return feeds


def reference_session(model: onnx.ModelProto, threads: int = 0) -> ort.InferenceSession:
    """An ONNX Runtime session with every graph optimization off: the strict oracle."""
    import onnxruntime as ort  # here, not at import: commands that run no model do not pay for it

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return reference_session(model).run(None, feeds)


def compare(name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> ErrorStats:
    """Error statistics of ``got`` against ``ref`` in float64 and whether ``tol`` holds."""
    if ref.shape != got.shape:
        raise UserError(f"output {name!r}: shape {got.shape} differs from the reference's {ref.shape}")
    r = ref.astype(np.float64).ravel()
    g = got.astype(np.float64).ravel()
    if not np.all(np.isfinite(g)):
        return ErrorStats(name, float("inf"), float("inf"), float("inf"), 0.0, _amax(r), 0.0, False)
    diff = np.abs(g - r)
    ref_max = _amax(r)
    allowed = tol.atol_rel * ref_max + tol.rtol * np.abs(r)
    denom = np.linalg.norm(r) * np.linalg.norm(g)
    cosine = float(np.dot(r, g) / denom) if denom > 0 else float(np.array_equal(r, g))
    max_rel = float(np.max(diff / np.maximum(np.abs(r), 1e-12 + 1e-6 * ref_max))) if r.size else 0.0
    # reported for every class map (segmentation logits), gated only where the tolerance asks for it
    agreement = argmax_agreement(ref, got) if tol.min_argmax_agreement > 0 or is_class_scores(ref) else None
    ok = bool(
        np.all(diff <= allowed)
        and cosine >= tol.min_cosine
        and (agreement is None or agreement >= tol.min_argmax_agreement)
    )
    return ErrorStats(
        name,
        float(diff.max(initial=0.0)),
        float(diff.mean()) if r.size else 0.0,
        max_rel,
        cosine,
        ref_max,
        float(tol.atol_rel * ref_max),
        ok,
        agreement,
    )


def is_class_scores(x: np.ndarray) -> bool:
    """NCHW scores of more than one class: a segmentation output, whose argmax is the class map."""
    return x.ndim == 4 and x.shape[1] > 1


def argmax_agreement(ref: np.ndarray, got: np.ndarray) -> float:
    """Share of positions where the class (argmax over axis 1: NCHW logits, N x classes) agrees."""
    if ref.ndim < 2:
        return float(np.argmax(ref) == np.argmax(got))
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(got, axis=1)))


def compare_all(names, refs, gots, tol: Tolerance) -> list[ErrorStats]:
    return [compare(n, r, g, tol) for n, r, g in zip(names, refs, gots)]


def _amax(x: np.ndarray) -> float:
    return float(np.max(np.abs(x))) if x.size else 0.0
