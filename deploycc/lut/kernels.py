"""Kernels of a profiled network mapped to the units they cover (nn-Meter's kernel detection).

A per-kernel profile (``verify/profile.py``: ONNX Runtime's profiler, TVM's VM instrument) times
what the runtime actually executes. Most kernels come from one unit: the exporter names every
node after its module path (``/encoder/residuals.3/op/op.2/Conv``), and the passes and ONNX
Runtime's fusions keep the name of the node a fused node grew from. Some kernels exist only
because two units meet: ONNX Runtime's layout reorders (NCHW to its blocked NCHWc layout and
back) sit between a unit that runs blocked convolutions and one that does not, and a fusion
that absorbs the next unit's first node produces a tensor named after that unit. Such a kernel
*covers* several units: it is attributed to them in equal shares (so that the per-unit entries
still sum to the network) and kept as an entry of its own, keyed by the units it joins.

What a kernel covers, on ONNX Runtime (from the optimized model in the artifact): the place of
its own name, of the tensors it writes, and for a layout reorder the places of the node that
wrote its input and of the node that reads its output. On TVM the functions carry no ONNX names:
each call is placed by execution order (``verify/profile_tvm.py``), so every TVM kernel covers
the one unit it was placed in. A kernel placed nowhere (ORT's final reorder of the logits, TVM's
``vm.builtin`` calls) belongs to the base of every prediction, with the head.
"""

from __future__ import annotations

from collections import defaultdict

from deploycc.verify.profile_names import place_of

REORDERS = ("ReorderInput", "ReorderOutput")


def ort_cover_names(model_path) -> dict[str, list[str]]:
    """Per node of the optimized ONNX model: the names whose places it covers (see module doc)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list] = defaultdict(list)
    for n in graph.node:
        for i in n.input:
            consumers[i].append(n)
    out = {}
    for n in graph.node:
        names = [n.name, *n.output]
        if n.op_type in REORDERS:
            before = producer.get(n.input[0]) if n.input else None
            after = [c for o in n.output for c in consumers.get(o, [])]
            names += [m.name for m in ([before] if before else []) + after]
            names += [t for m in after for t in m.output]
        out[n.name] = names
    return out


def covered_parts(row: dict, names: list[str], arch: dict) -> list[str]:
    """The parts (``stem``, ``layer <i>``, ``head``) a profiled kernel covers, in network order:
    its own placed layer, and every layer the ``names`` place (deduplicated)."""
    parts = [row["layer"]] if row.get("layer") else []
    for name in names:
        part, _ = place_of(name, arch)
        if part and part not in parts:
            parts.append(part)
    return sorted(parts, key=_order)


def _order(part: str) -> tuple[int, int]:
    if part == "stem":
        return (0, 0)
    if part == "head":
        return (2, 0)
    return (1, int(part.split()[1]))


def attribute(rows: list[dict], covers: dict[str, list[str]], arch: dict) -> tuple[dict, list[dict]]:
    """(ms per part, kernels that cover several parts) of one profiled network.

    ``rows`` is a profile's ``layers`` list; ``covers`` the names per kernel (empty on TVM); the
    parts are keyed ``stem``, ``layer <i>`` and ``head`` (unplaced kernels go to ``head``). A
    kernel that covers k parts adds ms / k to each and is listed with the units it joins."""
    genotype = arch.get("genotype") or []
    per_part: dict[str, float] = defaultdict(float)
    joined = []
    for row in rows:
        parts = covered_parts(row, covers.get(row["name"], []), arch) or ["head"]
        for part in parts:
            per_part[part] += row["ms"] / len(parts)
        if len(parts) > 1:
            units = [genotype[int(p.split()[1])] if p.startswith("layer ") else p for p in parts]
            joined.append({"parts": parts, "units": units, "op_type": row["op_type"], "ms": row["ms"]})
    return dict(per_part), joined


def kernel_key(kernel: dict) -> str:
    """The entry key of a kernel that joins units: its parts, their units and its op."""
    where = "+".join(p.replace("layer ", "") for p in kernel["parts"])
    return f"prof/kernel/{where}/{'+'.join(kernel['units'])}/{kernel['op_type']}"
