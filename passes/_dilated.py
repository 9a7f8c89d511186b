"""The three exact rewrites of a dilated 2-D Conv (docs/passes.md, "rewrite-dilated"), as
candidates with the geometry they leave, their MACs and bytes moved, and a function that applies
them.

* degenerate taps: kernel rows (columns) that read only padding for every output position are
  dropped; pads shrink by the dropped taps times the dilation, and an axis left with one tap
  loses its dilation. Exact for any stride; needs static H, W.
* zero-insert: k' = (k - 1) * d + 1 with W'[..., i*d, j*d] = W[..., i, j] and zeros elsewhere;
  pads and stride unchanged. Exact for any stride; MACs grow by (k'/k) per axis. Partial
  insertion [derived]: for a factor m dividing d, k' = (k - 1) * m + 1 taps at dilation d / m
  (W'[..., i*m, j*m] = W[..., i, j]) is the same sum; it can satisfy "padding < kernel" with far
  fewer MACs, e.g. rate 18, pad 18: m = 9 gives a 19-tap kernel at dilation 2 (x40 MACs) where
  full insertion needs 37 taps (x152), beyond the DLA's 32.
* space-to-batch (stride 1, equal dilation d on both axes): Pad by the conv pads plus
  e = (d - (H + pt + pb) % d) % d rows (likewise columns) at the end, split into d*d phases, run
  the dense conv (dilation 1, pads 0), interleave the phases back and Slice the e extra rows off.
  Batch 1 splits with SpaceToDepth + Reshape (no data copy for the reshapes); batch N > 1 goes
  through NCHW -> CNHW transposes so that phase and image share the batch axis, as TensorFlow's
  space_to_batch does. Output height H + pt + pb - d(k - 1), as the original.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import onnx_ir as ir

from deploycc.core.conv import ConvGeometry

from ._conv import new_initializer, release, set_conv_attrs, unique_node_name


@dataclass
class Candidate:
    method: str
    ok: bool
    why_not: str = ""
    geom: ConvGeometry | None = None
    extra_ops: tuple[str, ...] = ()
    fallback_ops: tuple[str, ...] = ()
    factor: tuple[int, ...] | None = None  # zero-insert: zeros inserted per axis + 1 (d = full)
    macs: int | None = None
    bytes: int | None = None
    violations: list[str] = field(default_factory=list)
    tier: int = 0
    seconds: float = 0.0
    apply: Callable | None = None

    def to_dict(self) -> dict:
        d = {"method": self.method, "ok": self.ok} | ({"factor": list(self.factor)} if self.factor else {})
        if not self.ok:
            return d | {"why_not": self.why_not}
        return d | {
            "kernel": list(self.geom.kernel),
            "dilations": list(self.geom.dilations),
            "pads": list(self.geom.pads),
            "extra_ops": list(self.extra_ops),
            "fallback_ops": list(self.fallback_ops),
            "macs": self.macs,
            "bytes": self.bytes,
            "violations": self.violations,
            "tier": self.tier,
            "est_seconds": self.seconds,
        }


def candidates(conv: ir.Node, g: ConvGeometry, elem: int) -> list[Candidate]:
    w_elems = int(np.prod(conv.inputs[1].const_value.shape.numpy()))
    full = tuple(g.dilations)
    partial = [(mh, mw) for mh in _divisors(full[0]) for mw in _divisors(full[1]) if (mh, mw) not in ((1, 1), full)]
    return (
        [_keep(g, w_elems, elem), _degenerate(g, w_elems, elem), _zero_insert(g, w_elems, elem, full)]
        + [_zero_insert(g, w_elems, elem, f) for f in partial]
        + [_space_to_batch(g, w_elems, elem)]
    )


# ---------------------------------------------------------------- candidates


def _io_bytes(g: ConvGeometry, elem: int) -> int | None:
    if g.in_shape is None:
        return None
    n = g.in_shape[0]
    out = n * g.out_channels * g.out_size(0) * g.out_size(1)
    return (int(np.prod(g.in_shape)) + out) * elem


def _keep(g: ConvGeometry, w_elems: int, elem: int) -> Candidate:
    io = _io_bytes(g, elem)
    return Candidate(
        "keep",
        True,
        geom=g,
        macs=g.macs(),
        bytes=None if io is None else io + w_elems * elem,
        apply=lambda graph, conv: _resolve_pads(conv, g),
    )


def _resolve_pads(conv: ir.Node, g: ConvGeometry) -> list[str]:
    if conv.attributes.get("auto_pad") is None or conv.attributes["auto_pad"].value in ("NOTSET", "VALID"):
        return []
    set_conv_attrs(conv, pads=g.pads)
    return [conv.name]


def live_taps(size: int, k: int, s: int, d: int, begin: int, out: int) -> tuple[int, int] | None:
    """(first, last) kernel tap that reads real input for some output position, or None."""
    reads = np.arange(out)[None, :] * s + np.arange(k)[:, None] * d - begin
    live = np.flatnonzero(np.any((reads >= 0) & (reads < size), axis=1))
    return (int(live[0]), int(live[-1])) if live.size else None


def _degenerate(g: ConvGeometry, w_elems: int, elem: int) -> Candidate:
    if g.in_shape is None:
        return Candidate("degenerate", False, "needs a static input shape")
    spans, kernel, dil, begins, ends = [], [], [], [], []
    for a in range(2):
        begin, end = g.pad(a)
        span = live_taps(g.in_shape[2 + a], g.kernel[a], g.strides[a], g.dilations[a], begin, g.out_size(a))
        if span is None:
            return Candidate("degenerate", False, "no kernel tap reads real input (output is bias only)")
        lo, hi = span
        spans.append(span)
        kernel.append(hi - lo + 1)
        dil.append(g.dilations[a] if hi > lo else 1)
        begins.append(begin - lo * g.dilations[a])
        ends.append(end - (g.kernel[a] - 1 - hi) * g.dilations[a])
    if tuple(kernel) == g.kernel:
        return Candidate(
            "degenerate",
            False,
            f"every kernel tap reads real input (dilation {list(g.dilations)} < spatial size {list(g.in_shape[2:])})",
        )
    if min(begins + ends) < 0:
        return Candidate("degenerate", False, "dropping the dead taps would need negative padding")
    new = replace(g, kernel=tuple(kernel), dilations=tuple(dil), pads=tuple(begins + ends))
    assert all(new.out_size(a) == g.out_size(a) for a in range(2)), "degenerate taps changed the output size"
    macs = new.macs()
    io = _io_bytes(g, elem)
    new_w = w_elems // int(np.prod(g.kernel)) * int(np.prod(kernel))

    def apply(graph: ir.Graph, conv: ir.Node) -> list[str]:
        w = conv.inputs[1]
        (h0, h1), (w0, w1) = spans
        sliced = np.ascontiguousarray(w.const_value.numpy()[:, :, h0 : h1 + 1, w0 : w1 + 1])
        conv.replace_input_with(1, new_initializer(graph, f"{conv.name}.live_taps_weight", sliced))
        set_conv_attrs(conv, kernel=kernel, dilations=dil, pads=new.pads)
        release(graph, [w])
        return [conv.name]

    return Candidate("degenerate", True, geom=new, macs=macs, bytes=io + new_w * elem, apply=apply)


def _zero_insert(g: ConvGeometry, w_elems: int, elem: int, factor: tuple[int, ...]) -> Candidate:
    """Insert ``factor - 1`` zeros between taps; the dilation left is d / factor (1 when factor = d)."""
    kernel = tuple((k - 1) * m + 1 for k, m in zip(g.kernel, factor))
    dilations = tuple(d // m for d, m in zip(g.dilations, factor))
    new = replace(g, kernel=kernel, dilations=dilations)
    io = _io_bytes(g, elem)
    new_w = w_elems // int(np.prod(g.kernel)) * int(np.prod(kernel))

    def apply(graph: ir.Graph, conv: ir.Node) -> list[str]:
        w = conv.inputs[1]
        old = w.const_value.numpy()
        wide = np.zeros(old.shape[:2] + kernel, dtype=old.dtype)
        wide[:, :, :: factor[0], :: factor[1]] = old
        conv.replace_input_with(1, new_initializer(graph, f"{conv.name}.zero_inserted_weight", wide))
        set_conv_attrs(conv, kernel=kernel, dilations=dilations, pads=g.pads)
        release(graph, [w])
        return [conv.name]

    return Candidate(
        "zero-insert",
        True,
        geom=new,
        macs=new.macs(),
        factor=factor,
        bytes=None if io is None else io + new_w * elem,
        apply=apply,
    )


def _divisors(n: int) -> list[int]:
    return [m for m in range(1, n + 1) if n % m == 0]


def _space_to_batch(g: ConvGeometry, w_elems: int, elem: int) -> Candidate:
    d = g.dilations[0]
    if g.strides != (1, 1):
        return Candidate("space-to-batch", False, f"needs stride 1 (has {list(g.strides)})")
    if g.dilations[1] != d:
        return Candidate("space-to-batch", False, f"needs equal dilations on both axes (has {list(g.dilations)})")
    if g.in_shape is None:
        return Candidate("space-to-batch", False, "needs a static input shape")
    n, c, h, w = g.in_shape
    padded = [h + sum(g.pad(0)), w + sum(g.pad(1))]
    extra = [(d - p % d) % d for p in padded]
    q = [(p + e) // d for p, e in zip(padded, extra)]
    o = [qi - k + 1 for qi, k in zip(q, g.kernel)]
    phase = replace(g, dilations=(1, 1), pads=(0, 0, 0, 0), in_shape=(n * d * d, c, q[0], q[1]))
    batch1 = n == 1
    ops = (
        ("Pad", "SpaceToDepth", "Reshape", "Reshape", "DepthToSpace", "Slice")
        if batch1
        else ("Pad", "Transpose", "SpaceToDepth", "Transpose", "Transpose", "DepthToSpace", "Transpose", "Slice")
    )
    x_pad = n * c * (padded[0] + extra[0]) * (padded[1] + extra[1])
    y_ph = n * d * d * g.out_channels * o[0] * o[1]
    y = n * g.out_channels * g.out_size(0) * g.out_size(1)
    moves = (
        (g.in_shape[0] * c * h * w + x_pad)
        + x_pad * 2 * (1 if batch1 else 3)
        + y_ph * 2 * (1 if batch1 else 3)
        + (y_ph + y)
    )  # pad, split (+transposes), merge (+transposes), slice
    conv_bytes = x_pad + y_ph + w_elems

    def apply(graph: ir.Graph, conv: ir.Node) -> list[str]:
        return _apply_space_to_batch(graph, conv, g, d, extra, batch1)

    return Candidate(
        "space-to-batch",
        True,
        geom=phase,
        extra_ops=ops,
        macs=phase.macs(),
        bytes=(moves + conv_bytes) * elem,
        apply=apply,
    )


# ---------------------------------------------------------------- space-to-batch construction


def _apply_space_to_batch(graph: ir.Graph, conv: ir.Node, g: ConvGeometry, d: int, extra, batch1: bool) -> list[str]:
    _n, c, h, w = g.in_shape
    pt, pb = g.pad(0)
    pl, pr = g.pad(1)
    made: list[ir.Node] = []

    def node(op: str, inputs, suffix: str, **attrs) -> ir.Value:
        made.append(
            ir.node(op, inputs, attributes=attrs or None, name=unique_node_name(graph, f"{conv.name}/s2b_{suffix}"))
        )
        return made[-1].outputs[0]

    def ints(suffix: str, values) -> ir.Value:
        return new_initializer(graph, f"{conv.name}.s2b_{suffix}", np.asarray(values, dtype=np.int64))

    x = conv.inputs[0]
    if any((pt, pl, pb + extra[0], pr + extra[1])):
        x = node("Pad", [x, ints("pads", [0, 0, pt, pl, 0, 0, pb + extra[0], pr + extra[1]])], "pad", mode="constant")
    q = [(h + pt + pb + extra[0]) // d, (w + pl + pr + extra[1]) // d]
    if batch1:
        x = node("SpaceToDepth", [x], "split", blocksize=d)
        x = node("Reshape", [x, ints("phase_shape", [d * d, c, q[0], q[1]])], "phases")
    else:
        x = node("Transpose", [x], "to_cnhw", perm=[1, 0, 2, 3])
        x = node("SpaceToDepth", [x], "split", blocksize=d)
        x = node("Transpose", [x], "phases", perm=[1, 0, 2, 3])
    graph.insert_before(conv, made)
    conv.replace_input_with(0, x)
    set_conv_attrs(conv, dilations=(1, 1), pads=(0, 0, 0, 0))
    before = list(made)
    made.clear()

    y = conv.outputs[0]
    uses, is_output, y_type, y_shape = list(y.uses()), y.is_graph_output(), y.type, y.shape
    y.shape = None  # now holds the d*d phases, not the conv's output
    o = [qi - k + 1 for qi, k in zip(q, g.kernel)]
    if batch1:
        z = node("Reshape", [y, ints("merge_shape", [1, d * d * g.out_channels, o[0], o[1]])], "unphase")
        z = node("DepthToSpace", [z], "merge", blocksize=d, mode="DCR")
    else:
        z = node("Transpose", [y], "unphase", perm=[1, 0, 2, 3])
        z = node("DepthToSpace", [z], "merge", blocksize=d, mode="DCR")
        z = node("Transpose", [z], "to_nchw", perm=[1, 0, 2, 3])
    if any(extra):
        z = node(
            "Slice",
            [z, ints("starts", [0, 0]), ints("ends", [g.out_size(0), g.out_size(1)]), ints("axes", [2, 3])],
            "crop",
        )
    graph.insert_after(conv, made)
    for use in uses:
        use.node.replace_input_with(use.idx, z)
    if is_output:
        for i, out in enumerate(graph.outputs):
            if out is y:
                graph.outputs[i] = z
        z.name, y.name = y.name, f"{y.name}.phases"
        z.type, z.shape = y_type, y_shape
    return [conv.name] + [m.name for m in before + made]
