"""The arithmetic of BatchNorm folding (docs/passes.md, "The fold arithmetic"), in float64,
independent of any graph.

BN(y) = gamma * (y - mean) / sqrt(var + eps) + beta = s * y + t per channel, with
s = gamma / sqrt(var + eps) and t = beta - mean * s.

* Conv, weight [Cout, Cin/g, k...]: W'[o] = W[o] * s[o]; b' = b * s + t (exact for any group).
* ConvTranspose, weight [Cin, Cout/g, k...]: W[i, j] feeds output channel
  (i // (Cin/g)) * (Cout/g) + j, so W'[i, j] = W[i, j] * s[that channel]; b' = b * s + t.
* Gemm Y = alpha * A' B' + beta * C, BN over Y's columns: B' is scaled along N (axis 1 of B, or
  axis 0 when transB), and the bias becomes C' = s * (beta * C) + t with beta set to 1, which
  also covers beta = 0 and a missing C; alpha and transA do not enter.
* BN before a Conv with zero padding: Conv(s * x + t) = Conv_{W * s[c]}(x) + sum W * t[c], where
  c(o, i) = (o // (Cout/g)) * (Cin/g) + i is the input channel tap i of output o reads. With
  padding the border taps would read 0 instead of t, so that case is refused by the pass.

Every function returns arrays cast back to the original dtype; ``FoldError`` says why a fold is
not possible (var + eps <= 0, a non-finite result, e.g. an fp16 overflow).
"""

from __future__ import annotations

import numpy as np


class FoldError(ValueError):
    """The fold would not be exact (or not representable); the message says why."""


def scale_shift(gamma, beta, mean, var, eps: float) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, var = (np.asarray(a, np.float64) for a in (gamma, beta, mean, var))
    denom = var + eps
    if np.any(denom <= 0):
        raise FoldError(f"var + epsilon <= 0 in {int(np.sum(denom <= 0))} channel(s)")
    s = gamma / np.sqrt(denom)
    return s, beta - mean * s


def into_conv(w: np.ndarray, b: np.ndarray | None, s: np.ndarray, t: np.ndarray):
    w64 = w.astype(np.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1))
    b64 = _bias(b, s.size) * s + t
    return _cast(w64, w.dtype), _cast(b64, w.dtype)


def into_conv_transpose(w: np.ndarray, b: np.ndarray | None, s: np.ndarray, t: np.ndarray, group: int):
    cin, cout_g = w.shape[0], w.shape[1]
    channel = (np.arange(cin)[:, None] // (cin // group)) * cout_g + np.arange(cout_g)[None, :]
    w64 = w.astype(np.float64) * s[channel].reshape(channel.shape + (1,) * (w.ndim - 2))
    b64 = _bias(b, s.size) * s + t
    return _cast(w64, w.dtype), _cast(b64, w.dtype)


def into_gemm(b_mat: np.ndarray, c: np.ndarray | None, beta: float, trans_b: bool, s: np.ndarray, t: np.ndarray):
    scale = s.reshape(-1, 1) if trans_b else s.reshape(1, -1)
    b64 = b_mat.astype(np.float64) * scale
    c64 = (beta * c.astype(np.float64) if c is not None else np.zeros(1)) * s + t
    return _cast(b64, b_mat.dtype), _cast(c64, b_mat.dtype)


def before_conv(w: np.ndarray, b: np.ndarray | None, s: np.ndarray, t: np.ndarray, group: int):
    cout, cin_g = w.shape[0], w.shape[1]
    channel = (np.arange(cout)[:, None] // (cout // group)) * cin_g + np.arange(cin_g)[None, :]
    extra = (1,) * (w.ndim - 2)
    w64 = w.astype(np.float64)
    new_w = w64 * s[channel].reshape(channel.shape + extra)
    new_b = _bias(b, cout) + np.sum(w64 * t[channel].reshape(channel.shape + extra), axis=tuple(range(1, w.ndim)))
    return _cast(new_w, w.dtype), _cast(new_b, w.dtype)


def spread(w: np.ndarray) -> float:
    """max|W| / median|W|: how much a fold widened the weight range (matters for INT8)."""
    a = np.abs(w.astype(np.float64))
    return float(a.max() / max(np.median(a), 1e-30)) if a.size else 0.0


def _bias(b, n: int) -> np.ndarray:
    return np.zeros(n) if b is None else b.astype(np.float64)


def _cast(a: np.ndarray, dtype) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
        out = a.astype(dtype)
    if not np.all(np.isfinite(out)):
        raise FoldError(f"a folded value is not finite in {np.dtype(dtype).name}")
    return out
