"""Where two models part: every intermediate tensor compared, the first one out of tolerance named.

When a numerics check fails (a build's own check, TensorRT's offline checks, an FP16 simulation),
its output-level figures say *that* the two sides differ, not *where*. As Polygraphy's
``--mark all`` comparison does, both models (a reference and the subject: the artifact's ONNX, its
proxy's ONNX or its Q/DQ model) are run on ONNX Runtime (optimizations off) with every
intermediate tensor added as a graph output, and tensors with the same name on both sides are
compared in the reference's topological order. Passes keep most ONNX tensor names; a tensor that
exists on one side only, or with another shape, is listed as unmatched, never silently dropped.

The activations of a full-size net do not fit in memory at once, so the tensors are exposed in
chunks of at most ``budget_bytes`` (each chunk one run of each model); only the figures are kept.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx

from .errors import first_line
from .numerics import Tolerance, compare, reference_session

DEFAULT_BUDGET = 512 << 20  # bytes of exposed activations per run of one model
MAX_ROWS = 400  # rows kept in the table (the first bad layer is always kept)
NO_ABS_BOUND = 1e9  # an atol_rel this large means: judged on the cosine only


def compare_layers(
    reference: onnx.ModelProto,
    subject: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    tol: Tolerance,
    reference_text: str = "reference",
    subject_text: str = "subject",
    budget_bytes: int = DEFAULT_BUDGET,
) -> dict:
    """Per-layer table of ``subject`` against ``reference`` on ``feeds``: rows in topological order,
    ``first_bad`` (the first row out of tolerance, or None) and ``unmatched`` tensors with the reason."""
    ref_order = _produced(reference)
    sub_order = _produced(subject)
    sub_names = set(sub_order)
    ref_uses, sub_uses = _consumer_ops(reference), _consumer_ops(subject)
    renamed = [n for n in ref_order if n in sub_names and ref_uses.get(n) != sub_uses.get(n)]
    matched = [n for n in ref_order if n in sub_names and n not in renamed]
    unmatched = [
        {"tensor": n, "why": "not in the subject (renamed or removed by a pass)"}
        for n in ref_order
        if n not in sub_names
    ]
    unmatched += [{"tensor": n, "why": "only in the subject"} for n in sub_order if n not in set(ref_order)]
    unmatched += [
        {
            "tensor": n,
            "why": f"same name, another meaning: used by {', '.join(ref_uses.get(n, ())) or 'nothing'} in the "
            f"reference, by {', '.join(sub_uses.get(n, ())) or 'nothing'} in the subject (a pass folded what followed)",
        }
        for n in renamed
    ]
    base = {
        "reference": reference_text,
        "subject": subject_text,
        "tolerance": tol.__dict__,
        "compared": 0,
        "unmatched": unmatched,
        "rows": [],
        "first_bad": None,
    }
    try:
        rows = _compare_chunks(reference, subject, feeds, tol, ref_order, matched, unmatched, budget_bytes)
    except Exception as exc:  # a model ORT cannot run with its intermediates exposed: say so, never pass
        return base | {"status": "not_run", "reason": f"ONNX Runtime could not run the models: {first_line(exc)}"}
    bad = next((r for r in rows if not r["ok"]), None)
    kept = rows[:MAX_ROWS] if bad is None or rows.index(bad) < MAX_ROWS else [*rows[:MAX_ROWS], bad]
    return base | {
        "status": "failed" if bad else "passed",
        "compared": len(rows),
        "rows": kept,
        "rows_left_out": len(rows) - len(kept),
        "first_bad": bad,
    }


def first_bad_line(table: dict | None) -> str:
    """'first layer out of tolerance: TENSOR (OP NODE): figures', or why there is none."""
    if not table:
        return ""
    if table.get("status") == "not_run":
        return f"per-layer comparison not run: {table['reason']}"
    bad = table.get("first_bad")
    if bad is None:
        return (
            f"every one of {table['compared']} intermediate tensors matched by name holds "
            f"({len(table['unmatched'])} unmatched): the difference arises outside the compared graph"
        )
    allowed = "" if table["tolerance"]["atol_rel"] >= NO_ABS_BOUND else f" (allowed {bad['allowed_abs']:.3g})"
    return (
        f"first layer out of tolerance: {bad['tensor']!r} ({bad['op']} {bad['node']!r}): max abs "
        f"{bad['max_abs']:.3g}{allowed}, max rel {bad['max_rel']:.3g}, cosine {bad['cosine']:.6f} ({bad['why']})"
    )


def _produced(model: onnx.ModelProto) -> dict[str, tuple[str, str]]:
    """Every float activation a node produces -> (op, node), in the graph's (topological) order.
    Values computed from weights and constants alone (a weight's DequantizeLinear) are not layers."""
    floats = _float_values(model)
    dynamic = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        if not any(i in dynamic for i in node.input):
            continue
        for o in node.output:
            dynamic.add(o)
            if o and floats.get(o, True):
                out[o] = (node.op_type, node.name or o)
    return out


_TRANSPARENT = ("QuantizeLinear", "DequantizeLinear", "Cast")  # Q/DQ and FP16 casts keep a value's meaning


def _consumer_ops(model: onnx.ModelProto) -> dict[str, tuple[str, ...]]:
    """Tensor -> the sorted op types that use it, looking through Q/DQ pairs and casts. A pass that
    keeps a tensor's name but changes its meaning (fold-bn: a Conv's output becomes what its
    BatchNormalization computed) changes what uses it."""
    users: dict[str, list] = {}
    for node in model.graph.node:
        for i in node.input:
            users.setdefault(i, []).append(node)

    def ops(name: str, depth: int = 0) -> list[str]:
        out = []
        for node in users.get(name, []):
            if node.op_type in _TRANSPARENT and depth < 4:
                out += [op for o in node.output for op in ops(o, depth + 1)]
            else:
                out.append(node.op_type)
        return out

    return {name: tuple(sorted(set(ops(name)))) for name in users}


def _float_values(model: onnx.ModelProto) -> dict[str, bool]:
    """Tensor name -> whether it is a float tensor, where shape inference knows its type."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    kinds = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        elem = vi.type.tensor_type.elem_type
        kinds[vi.name] = elem in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
    return kinds


def _compare_chunks(reference, subject, feeds, tol, ref_order, matched, unmatched, budget) -> list[dict]:
    rows: list[dict] = []
    chunk: list[str] = []
    size = 0
    sizes = _sizes(reference)
    outputs = {o.name for o in reference.graph.output}
    # The class agreement (argmax over channels) means something for the model's logits only.
    inner = dataclasses.replace(tol, min_argmax_agreement=0.0)
    for name in [*matched, None]:
        if name is not None and (not chunk or size + sizes.get(name, 0) <= budget):
            chunk.append(name)
            size += sizes.get(name, 0)
            continue
        if chunk:
            ref = _run_exposed(reference, chunk, feeds)
            got = _run_exposed(subject, chunk, feeds)
            for n in chunk:
                if ref[n].shape != got[n].shape:
                    unmatched.append({"tensor": n, "why": f"shape {list(got[n].shape)} vs {list(ref[n].shape)}"})
                    continue
                rows.append(_row(n, ref_order[n], compare(n, ref[n], got[n], tol if n in outputs else inner), tol))
        chunk, size = ([name], sizes.get(name, 0)) if name is not None else ([], 0)
    return rows


def _row(name: str, producer: tuple[str, str], s, tol: Tolerance) -> dict:
    why = []
    if s.max_abs > s.allowed_abs + tol.rtol * s.ref_max_abs:
        why.append(f"max abs {s.max_abs:.3g} > allowed {s.allowed_abs:.3g}")
    if s.cosine < tol.min_cosine:
        why.append(f"cosine {s.cosine:.6f} < {tol.min_cosine:g}")
    if s.argmax_agreement is not None and s.argmax_agreement < tol.min_argmax_agreement:
        why.append(f"argmax agreement {s.argmax_agreement:.4f} < {tol.min_argmax_agreement:g}")
    if not s.ok and not why:
        why.append("element-wise error above its allowed bound (atol_rel * max|ref| + rtol * |ref|)")
    return {
        "tensor": name,
        "op": producer[0],
        "node": producer[1],
        "max_abs": s.max_abs,
        "allowed_abs": s.allowed_abs,
        "max_rel": s.max_rel,
        "cosine": s.cosine,
        "ok": s.ok,
        "why": "; ".join(why) if not s.ok else "",
    }


def _sizes(model: onnx.ModelProto) -> dict[str, int]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return {}
    out = {}
    for vi in inferred.graph.value_info:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = int(np.prod(dims)) * 4 if dims and all(d > 0 for d in dims) else 0
    return out


def _run_exposed(model: onnx.ModelProto, names: list[str], feeds) -> dict[str, np.ndarray]:
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    del exposed.graph.output[:]
    for name in names:
        exposed.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    inputs = {i.name for i in exposed.graph.input}
    values = reference_session(exposed).run(None, {k: v for k, v in feeds.items() if k in inputs})
    return dict(zip(names, values, strict=True))
