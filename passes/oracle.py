"""The pass manager's numerical oracle: the model before a pass against the model after it.

The oracle is ONNX Runtime with its own graph optimizations disabled (an optimizing reference
could hide a wrong fold). Where ORT cannot run the *pre-pass* model at all (it refuses a dilated
Conv with auto_pad SAME_*; docs/passes.md, "The strict oracle"), both models run on
``onnx.reference`` instead and the record says so; where ORT ran the pre-pass model but cannot
run the pass's output, the pass fails.

On a mismatch the oracle localizes it: it re-runs both models exposing every value that an
untouched node produces under the same name in both graphs, and names the first one (in the
post-pass graph's order) that diverges and the rewritten node(s) upstream of it.
"""

from __future__ import annotations

import numpy as np
import onnx

from deploycc.core.errors import first_line
from deploycc.core.numerics import Tolerance, compare, compare_all, reference_session

from .base import PassFailed

ORT = "onnxruntime (graph optimizations disabled)"
REFERENCE = "onnx.reference (ONNX Runtime cannot run the pre-pass model)"
_LOCALIZE_BYTES = 256 << 20


class Oracle:
    """Fixed feeds and tolerance; remembers the last verified model's outputs for the next pass."""

    def __init__(self, feeds: dict[str, np.ndarray], tolerance: Tolerance):
        self.feeds, self.tol = feeds, tolerance
        self._last: tuple | None = None

    def verify(self, name: str, before: onnx.ModelProto, after: onnx.ModelProto, touched: list[str]):
        ref, kind = self._outputs(before)
        try:
            got = _run(after, self.feeds, kind)
        except Exception as exc:
            raise PassFailed(f"pass {name}: {kind.split(' (')[0]} cannot run its output: {first_line(exc)}") from None
        names = [o.name for o in before.graph.output]
        stats = compare_all(names, ref, got, self.tol)
        bad = [s for s in stats if not s.ok]
        if bad:
            s = bad[0]
            where = (
                localize(before, after, self.feeds, self.tol, touched, kind)
                or f"rewritten nodes: {', '.join(touched[:8]) or 'none recorded'}"
            )
            raise PassFailed(
                f"pass {name} changed the numerics of output {s.output!r}: max abs error "
                f"{s.max_abs:.3g} > allowed {s.allowed_abs:.3g} (max rel {s.max_rel:.3g}, "
                f"cosine {s.cosine:.6f}); {where}"
            )
        self._last = (after, got, kind)
        return stats, kind

    def _outputs(self, model: onnx.ModelProto):
        if self._last is not None and self._last[0] is model:
            return self._last[1], self._last[2]
        try:
            return _run(model, self.feeds, ORT), ORT
        except Exception:
            return _run(model, self.feeds, REFERENCE), REFERENCE


def _run(model: onnx.ModelProto, feeds, kind: str) -> list[np.ndarray]:
    if kind == ORT:
        import onnxruntime as ort

        session = reference_session(model)
        options = ort.RunOptions()
        options.log_severity_level = 4  # a refusal is handled (fallback or PassFailed), not logged
        return session.run(None, feeds, options)
    from onnx.reference import ReferenceEvaluator

    return list(ReferenceEvaluator(model).run(None, feeds))


def localize(before, after, feeds, tol: Tolerance, touched: list[str], kind: str = ORT) -> str | None:
    """'first divergence at value V (node N), downstream of rewritten node(s) R: figures', or None."""
    touched_set = set(touched)
    before_nodes = {(n.name, n.op_type) for n in before.graph.node}
    before_values = {o for n in before.graph.node for o in n.output}
    outputs = {o.name for o in after.graph.output}
    producer = {o: n for n in after.graph.node for o in n.output}
    candidates = [
        o
        for n in after.graph.node
        if n.name not in touched_set and (n.name, n.op_type) in before_nodes
        for o in n.output
        if o in before_values and o not in outputs
    ]
    candidates = _within_budget(after, candidates, producer, touched_set)
    if not candidates:
        return None
    try:
        ref = dict(zip(candidates, _run(_expose(before, candidates), feeds, kind)[len(before.graph.output) :]))
        got = dict(zip(candidates, _run(_expose(after, candidates), feeds, kind)[len(after.graph.output) :]))
    except Exception:
        return None
    for v in candidates:
        if ref[v].shape != got[v].shape:
            continue
        s = compare(v, ref[v], got[v], tol)
        if not s.ok:
            node = producer[v]
            up = _upstream_touched(after, node, touched_set)
            return (
                f"first divergence at value {v!r} (output of {node.op_type} {node.name!r}), downstream of "
                f"rewritten node(s) {', '.join(up[:4]) or 'none'}: max abs error {s.max_abs:.3g} > "
                f"allowed {s.allowed_abs:.3g}"
            )
    return None


def _within_budget(model, names: list[str], producer, touched: set[str]) -> list[str]:
    sizes = _value_bytes(model)
    if sum(sizes.get(v, 0) for v in names) <= _LOCALIZE_BYTES:
        return names
    # Too large to keep every activation: only the values right after a rewritten node.
    near = {
        o
        for n in model.graph.node
        for o in n.output
        if any(producer.get(i) is not None and producer[i].name in touched for i in n.input)
    }
    return [v for v in names if v in near]


def _value_bytes(model: onnx.ModelProto) -> dict[str, int]:
    out = {}
    for vi in model.graph.value_info:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = int(np.prod(dims)) * 4 if dims else 4
    return out


def _expose(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    infos = {vi.name: vi for vi in model.graph.value_info}
    for name in names:
        exposed.graph.output.append(infos[name] if name in infos else onnx.helper.make_empty_tensor_value_info(name))
    return exposed


def _upstream_touched(model: onnx.ModelProto, node, touched: set[str]) -> list[str]:
    producer = {o: n for n in model.graph.node for o in n.output}
    found, seen, frontier = [], set(), [node]
    while frontier:
        nxt = []
        for n in frontier:
            for i in n.input:
                p = producer.get(i)
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                if p.name in touched:
                    found.append(p.name)
                else:
                    nxt.append(p)
        frontier = nxt
    return found
