"""Per-layer profiles of a compiled artifact: time per node (ONNX Runtime) or per function call
(TVM Relax VM), mapped back to the searchable layer and unit each came from.

The result has one shape for every backend (the ``profile`` field of ``deploycc bench --json``)::

    {"backend": str, "layers": [{"name": str, "op_type": str, "layer": str | None,
                                 "unit": str | None, "ms": float}, ...]}

``ms`` is the mean time of that node or function per run, over ``runs`` profiled runs after the
warm-up (or, with ``per_run="median"``, the median over the runs of its time in each run, which a
run disturbed by another process on a shared machine does not move). ``layer`` is ``"stem"``,
``"layer <i>"`` (the i-th searchable layer) or ``"head"``, and ``unit`` the unit code the
architecture chose there (``"stem"`` / ``"head"`` for those); both are
None when the artifact records no architecture (built from a plain ONNX file) or a node cannot
be traced to one (layout reorders ORT inserts between nodes, for instance).

Names: the export (``models/export.py``) names every node after the module it came from
(``/encoder/residuals.3/...``, ``/units.7/...``); the passes and ONNX Runtime's fusions keep the
name of the node a fused node grew from, so an ORT node maps back by its name
(:func:`deploycc.verify.profile_names.place_of`). TVM's Relax importer does not keep ONNX names
on the functions it emits; the TVM side (``profile_tvm``) attributes each VM call to an ONNX node
of the compiled model by execution order and op kind.

Written by hand because neither runtime maps its profile back to the network's modules.
"""

from __future__ import annotations

import json
import tempfile
from collections import OrderedDict
from pathlib import Path

from deploycc.core.errors import UserError
from deploycc.pipeline.artifact import read_manifest

from .measure import reduce_runs
from .profile_names import place_of

BACKENDS = ("ort", "tvm")


def profile_artifact(
    path, threads: int = 1, runs: int = 10, warmup: int = 2, seed: int = 0, per_run: str = "mean"
) -> dict:
    """The per-layer profile of the artifact folder at ``path`` on fixed-seed random inputs."""
    if runs < 1:
        raise UserError(f"--profile-runs {runs}: give at least 1 run")
    path = Path(path)
    manifest = read_manifest(path)
    backend = manifest.get("backend")
    if backend not in BACKENDS:
        raise UserError(f"{path}: --profile works for ONNX Runtime and TVM artifacts; this one is {backend!r}")
    arch = manifest.get("architecture")
    if backend == "ort":
        rows = _ort_rows(path, manifest, threads, runs, warmup, seed, per_run)
    else:
        from .profile_tvm import tvm_rows

        rows = tvm_rows(path, manifest, threads, runs, warmup, seed, per_run)
    layers = []
    for name, op_type, ms, origin in rows:
        layer, unit = place_of(name, arch)
        for candidate in [origin] if isinstance(origin, str) else origin or []:
            if layer is not None:
                break
            layer, unit = place_of(candidate, arch)
        layers.append({"name": name, "op_type": op_type, "layer": layer, "unit": unit, "ms": float(ms)})
    return {"backend": backend, "layers": layers}


def by_layer(profile: dict) -> list[dict]:
    """Total ms per (layer, unit), in network order; unplaced nodes under layer None."""
    totals: OrderedDict[tuple, float] = OrderedDict()
    for row in profile["layers"]:
        key = (row["layer"], row["unit"])
        totals[key] = totals.get(key, 0.0) + row["ms"]
    return [{"layer": k[0], "unit": k[1], "ms": v} for k, v in totals.items()]


def _ort_rows(path: Path, manifest: dict, threads: int, runs: int, warmup: int, seed: int, per_run: str) -> list:
    """(node name, op type, mean ms per run, neighbour it serves) from ONNX Runtime's profiler."""
    import onnxruntime as ort

    from deploycc.core.numerics import random_feeds
    from deploycc.pipeline.runtime import open_artifact

    _, session = open_artifact(path, threads or None)  # the checks and inputs of a normal run
    feeds = {s.name: v for s, v in zip(session.inputs, session.ordered_feeds(random_feeds(session.inputs, seed)))}
    with tempfile.TemporaryDirectory(prefix="deploycc-profile-") as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the artifact is optimized
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = threads
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort")
        int8 = manifest.get("backend_info", {}).get("int8_kernels")
        if int8 is not None:
            from deploycc.targets.onnxruntime.int8_cpu import apply

            apply(so, int8)
        sess = ort.InferenceSession(str(path / "model.onnx"), so, providers=["CPUExecutionProvider"])
        for _ in range(warmup):
            sess.run(None, feeds)
        for _ in range(runs):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    neighbour = _ort_neighbours(path / "model.onnx")
    return [(name, op, ms, neighbour.get(name, [])) for name, op, ms in _ort_node_times(events, runs, per_run)]


def _ort_node_times(events: list, runs: int, per_run: str = "mean") -> list:
    """Kernel time per node over the last ``runs`` model runs in the trace (the warm-up runs
    before them are left out by their start times): the mean per run, or the median of the runs."""
    import bisect

    run_starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    starts = run_starts[-runs:] if len(run_starts) >= runs else [0]
    per_node: OrderedDict[str, list] = OrderedDict()
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time") or e["ts"] < starts[0]:
            continue
        name = e["name"][: -len("_kernel_time")]
        row = per_node.setdefault(name, [e.get("args", {}).get("op_name", "?"), [0.0] * runs])
        row[1][min(bisect.bisect_right(starts, e["ts"]) - 1, runs - 1)] += e["dur"] / 1000.0
    return [(name, op, reduce_runs(times, per_run)) for name, (op, times) in per_node.items()]


def _ort_neighbours(model_path: Path) -> dict[str, list[str]]:
    """For each node of the optimized model, names that may place it when its own name does not
    (nodes ORT made are named ``Op:output`` by the backend): the names of its other inputs (a
    folded bias ``/units.0/op/op.0/Conv.folded_bias`` keeps the module path), then the same for
    the node it serves: for a ``ReorderInput`` (NCHW to ORT's blocked layout) the node that reads
    its output, for any other node the one that wrote its first input."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    producer = {out: n.name for n in graph.node for out in n.output}
    consumer: dict[str, str] = {}
    for n in graph.node:
        for i in n.input:
            consumer.setdefault(i, n.name)
    nodes = {n.name: n for n in graph.node}
    out = {}
    for n in graph.node:
        if n.op_type == "ReorderInput" and n.output:
            near = consumer.get(n.output[0])
        else:
            near = producer.get(n.input[0]) if n.input else None
        names = list(n.input[1:])
        if near:
            names += [near, *nodes[near].input[1:]]
        out[n.name] = names
    return out
