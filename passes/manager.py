"""The pass manager: runs graph passes on onnx_ir and proves each one kept the model intact.

A pass is a :class:`~deploycc.passes.base.DeployPass` (``base.py``). After every pass the manager
checks (docs/passes.md, "What the manager checks"; a pass that changed nothing hands back the
model already checked, so the structural checks run when the graph changed):

* the ONNX checker (full check, which includes topological order) and strict shape inference;
* the graph's signature (input and output names, dtypes, shapes) is unchanged;
* the pass introduced no duplicate node names and no initializer without a use;
* the pass's ``modified`` flag is truthful (graph and model metadata compared with an untouched
  round trip);
* with verification on, outputs match the pre-pass graph on the strict oracle (ONNX Runtime with
  its graph optimizations disabled; see ``oracle``) on fixed-seed inputs, within a tolerance
  scaled to the output magnitude.

A failure raises :class:`PassFailed` naming the pass, the first node whose output diverges (or
the rewritten nodes) and the error figures.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import onnx
import onnx_ir as ir

from deploycc.core.errors import first_line
from deploycc.core.loader import graph_inputs
from deploycc.core.macs import op_histogram
from deploycc.core.numerics import Tolerance, random_feeds, value_specs

from .base import DeployPass, PassFailed, PassLog
from .oracle import Oracle


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
    verify_seconds: float = 0.0
    oracle: str | None = None

    def to_dict(self) -> dict:
        return {
            # both times under one key: the build manifest blanks it to keep its hashes reproducible
            "name": self.name,
            "modified": self.modified,
            "oracle": self.oracle,
            "seconds": {"pass": round(self.seconds, 4), "verify": round(self.verify_seconds, 4)},
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "ops_before": self.ops_before,
            "ops_after": self.ops_after,
            "rewrites": self.log.rewrites,
            "refusals": self.log.refusals,
            "stats": self.log.stats,
            "verification": [s.to_dict() for s in self.verification],
        }


def run_passes(
    model: onnx.ModelProto,
    passes: list[DeployPass],
    verify: bool = True,
    tolerance: Tolerance = Tolerance(atol_rel=1e-4, rtol=1e-4),
    seed: int = 0,
) -> tuple[onnx.ModelProto, list[PassRecord]]:
    """Run ``passes`` in order on ``model``; return the new model and one record per pass."""
    records = []
    model = _shape_inferred(name_nodes(model))
    oracle = Oracle(random_feeds(value_specs(graph_inputs(model)), seed), tolerance) if verify else None
    done: list[str] = []
    for p in passes:
        try:
            model, record = _run_one(model, p, oracle)
        except PassFailed as exc:
            raise PassFailed(f"{exc} (passes already run: {', '.join(done) or 'none'})") from None
        records.append(record)
        done.append(p.name)
    return model, records


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` where every unnamed (or repeated) node name becomes ``<op>_<index>``:
    node names are the trace's vocabulary, so a pass must be able to say which node it rewrote."""
    names = [n.name for n in model.graph.node]
    if all(names) and len(set(names)) == len(names):
        return model
    named = onnx.ModelProto()
    named.CopyFrom(model)
    counts = Counter(names)
    taken = {n for n in names if n and counts[n] == 1}
    for i, node in enumerate(named.graph.node):
        if node.name and counts[node.name] == 1:
            continue
        base, k = f"{node.op_type}_{i}", 1
        node.name = base
        while node.name in taken:
            node.name, k = f"{base}.{k}", k + 1
        taken.add(node.name)
    return named


def _run_one(model: onnx.ModelProto, p: DeployPass, oracle) -> tuple[onnx.ModelProto, PassRecord]:
    untouched = ir.serde.serialize_model(ir.serde.deserialize_model(model))
    graph = ir.serde.deserialize_model(model)
    start = time.perf_counter()
    try:
        result = p(graph)
    except (ir.passes.PreconditionError, ir.passes.PostconditionError, ir.passes.PassError) as exc:
        kind: dict[type, str] = {
            ir.passes.PreconditionError: "precondition",
            ir.passes.PostconditionError: "postcondition",
        }
        cause = f": {first_line(exc.__cause__)}" if exc.__cause__ else ""
        raise PassFailed(
            f"pass {p.name}: {kind.get(type(exc), 'pass contract')} failed: {first_line(exc)}{cause}"
        ) from None
    seconds = time.perf_counter() - start
    after = ir.serde.serialize_model(result.model)
    changed = _content_bytes(after) != _content_bytes(untouched)
    if changed != result.modified:
        raise PassFailed(
            f"pass {p.name}: reported modified={result.modified} but the graph "
            f"{'changed' if changed else 'did not change'}"
        )
    after = check_invariants(p.name, model, after) if changed else model
    record = PassRecord(
        p.name,
        changed,
        seconds,
        len(model.graph.node),
        len(after.graph.node),
        op_histogram(model),
        op_histogram(after),
        p.log,
    )
    if changed and oracle is not None:
        start = time.perf_counter()
        record.verification, record.oracle = oracle.verify(p.name, model, after, _touched(p.log))
        record.verify_seconds = time.perf_counter() - start
    return after, record


def check_invariants(name: str, before: onnx.ModelProto, after: onnx.ModelProto) -> onnx.ModelProto:
    """The structural invariants on a pass's output (docs/passes.md, "Invariants after every
    pass"); returns it shape-inferred."""
    try:
        onnx.checker.check_model(after, full_check=True)
    except Exception as exc:
        raise PassFailed(f"pass {name}: the ONNX checker rejects its output: {first_line(exc)}") from None
    try:
        after = onnx.shape_inference.infer_shapes(after, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise PassFailed(f"pass {name}: strict shape inference fails on its output: {first_line(exc)}") from None
    if _signature(before) != _signature(after):
        raise PassFailed(
            f"pass {name}: changed the graph's inputs or outputs ({_signature(before)} -> {_signature(after)})"
        )
    dup = _duplicate_names(after) - _duplicate_names(before)
    if dup:
        raise PassFailed(f"pass {name}: introduced duplicate node name(s) {sorted(dup)[:5]}")
    dangling = _unused_initializers(after) - _unused_initializers(before)
    if dangling:
        raise PassFailed(f"pass {name}: left initializer(s) without a use: {sorted(dangling)[:5]}")
    return after


def _shape_inferred(model: onnx.ModelProto) -> onnx.ModelProto:
    """Passes read static shapes from value_info (as the loader leaves them); infer them here too."""
    from deploycc.core.errors import UserError

    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise UserError(
            f"model {model.graph.name!r}: strict shape inference fails before the passes: {first_line(exc)}"
        ) from None


def _touched(log: PassLog) -> list[str]:
    return [n for r in log.rewrites for n in r["nodes"]]


def _signature(model: onnx.ModelProto):
    def sig(values):
        return [(s.name, s.shape, s.dtype) for s in value_specs(values)]

    return sig(graph_inputs(model)), sig(model.graph.output)


def _duplicate_names(model: onnx.ModelProto) -> set[str]:
    counts = Counter(n.name for n in model.graph.node if n.name)
    return {name for name, c in counts.items() if c > 1}


def _unused_initializers(model: onnx.ModelProto) -> set[str]:
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    for n in model.graph.node:  # values captured by subgraphs (If/Loop bodies) count as used
        for a in n.attribute:
            for g in list(a.g.node if a.HasField("g") else []) + [x for sg in a.graphs for x in sg.node]:
                used.update(g.input)
    return {t.name for t in model.graph.initializer} - used


def _content_bytes(model: onnx.ModelProto) -> bytes:
    """The graph without inferred value_info, plus the model's metadata (where fuse writes its plan)."""
    graph = onnx.GraphProto()
    graph.CopyFrom(model.graph)
    del graph.value_info[:]
    meta = sorted((p.key, p.value) for p in model.metadata_props)
    return graph.SerializeToString(deterministic=True) + repr(meta).encode()
