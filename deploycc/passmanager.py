"""The pass manager: runs graph passes on onnx_ir and proves each one kept the model intact.

Passes subclass :class:`DeployPass`, an ``onnx_ir`` in-place pass (``requires`` -> ``call`` ->
``ensures``, in-place declaration checked by onnx_ir itself). After every pass the manager checks:

* the ONNX checker (full check) and strict shape inference pass;
* the graph's signature (input and output names, dtypes, shapes) is unchanged;
* the pass's ``modified`` flag is truthful (serialized graph compared with an untouched round trip);
* with verification on, outputs match the pre-pass graph on ONNX Runtime with its graph
  optimizations disabled, on fixed-seed inputs, within a tolerance scaled to the output magnitude.

A failure raises :class:`PassFailed` naming the pass, the nodes it rewrote and the error figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import onnx
import onnx_ir as ir

from .errors import GateFailed
from .numerics import Tolerance, compare_all, random_feeds, run_reference, value_specs


class PassFailed(GateFailed):
    """A pass broke an invariant or changed the numerics."""


@dataclass
class PassContext:
    """What a pass may know about the build: the target's data and the user's options."""

    target: Any = None
    force: bool = False
    options: dict = field(default_factory=dict)


@dataclass
class PassLog:
    """What one pass did: each rewrite (with the nodes it touched) and each refusal with its reason."""

    rewrites: list[dict] = field(default_factory=list)
    refusals: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def rewrite(self, nodes: list[str], detail: str, **extra) -> None:
        self.rewrites.append({"nodes": list(nodes), "detail": detail, **extra})

    def refuse(self, node: str, reason: str, **extra) -> None:
        self.refusals.append({"node": node, "reason": reason, **extra})


class DeployPass(ir.passes.InPlacePass):
    """Base class of deploycc passes. Subclasses set ``name`` and ``summary`` and implement ``call``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self, ctx: PassContext | None = None):
        super().__init__()
        self.ctx = ctx or PassContext()
        self.log = PassLog()


@dataclass
class PassRecord:
    name: str
    modified: bool
    seconds: float
    nodes_before: int
    nodes_after: int
    ops_before: dict
    ops_after: dict
    log: PassLog
    verification: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "modified": self.modified, "seconds": round(self.seconds, 4),
            "nodes_before": self.nodes_before, "nodes_after": self.nodes_after,
            "ops_before": self.ops_before, "ops_after": self.ops_after,
            "rewrites": self.log.rewrites, "refusals": self.log.refusals, "stats": self.log.stats,
            "verification": [s.to_dict() for s in self.verification],
        }


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    hist: dict[str, int] = {}
    for node in model.graph.node:
        hist[node.op_type] = hist.get(node.op_type, 0) + 1
    return dict(sorted(hist.items()))


def run_passes(
    model: onnx.ModelProto,
    passes: list[DeployPass],
    verify: bool = True,
    tolerance: Tolerance = Tolerance(atol_rel=1e-4, rtol=1e-4),
    seed: int = 0,
) -> tuple[onnx.ModelProto, list[PassRecord]]:
    """Run ``passes`` in order on ``model``; return the new model and one record per pass."""
    records = []
    feeds = random_feeds(value_specs(_real_inputs(model)), seed) if verify else None
    for p in passes:
        model, record = _run_one(model, p, feeds, tolerance)
        records.append(record)
    return model, records


def _run_one(model, p: DeployPass, feeds, tolerance) -> tuple[onnx.ModelProto, PassRecord]:
    untouched = ir.serde.serialize_model(ir.serde.deserialize_model(model))
    graph = ir.serde.deserialize_model(model)
    start = time.perf_counter()
    result = p(graph)
    seconds = time.perf_counter() - start
    after = ir.serde.serialize_model(result.model)
    changed = _graph_bytes(after) != _graph_bytes(untouched)
    if changed != result.modified:
        raise PassFailed(f"pass {p.name}: reported modified={result.modified} but the graph "
                         f"{'changed' if changed else 'did not change'}")
    if changed:
        after = _check_invariants(p.name, model, after)
    record = PassRecord(p.name, changed, seconds, len(model.graph.node), len(after.graph.node),
                        op_histogram(model), op_histogram(after), p.log)
    if changed and feeds is not None:
        record.verification = _verify(p, model, after, feeds, tolerance)
    return (after if changed else model), record


def _check_invariants(name: str, before: onnx.ModelProto, after: onnx.ModelProto) -> onnx.ModelProto:
    try:
        onnx.checker.check_model(after, full_check=True)
    except Exception as exc:
        raise PassFailed(f"pass {name}: the ONNX checker rejects its output: {_line(exc)}") from None
    try:
        after = onnx.shape_inference.infer_shapes(after, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise PassFailed(f"pass {name}: strict shape inference fails on its output: {_line(exc)}") from None
    if _signature(before) != _signature(after):
        raise PassFailed(f"pass {name}: changed the graph's inputs or outputs "
                         f"({_signature(before)} -> {_signature(after)})")
    return after


def _verify(p: DeployPass, before, after, feeds, tolerance) -> list:
    names = [o.name for o in before.graph.output]
    stats = compare_all(names, run_reference(before, feeds), run_reference(after, feeds), tolerance)
    bad = [s for s in stats if not s.ok]
    if bad:
        touched = [n for r in p.log.rewrites for n in r["nodes"]]
        s = bad[0]
        raise PassFailed(
            f"pass {p.name} changed the numerics of output {s.output!r}: max abs error {s.max_abs:.3g} "
            f"> allowed {s.allowed_abs:.3g} (cosine {s.cosine:.6f}); rewritten nodes: "
            f"{', '.join(touched[:8]) or 'none recorded'}"
        )
    return stats


def _real_inputs(model: onnx.ModelProto):
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _signature(model: onnx.ModelProto):
    def sig(values):
        return [(s.name, s.shape, s.dtype) for s in value_specs(values)]
    return sig(_real_inputs(model)), sig(model.graph.output)


def _graph_bytes(model: onnx.ModelProto) -> bytes:
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    del graph.value_info[:]
    return graph.SerializeToString(deterministic=True)


def _line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
