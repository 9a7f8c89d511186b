"""The fuse pass's cost model checked against the machine, one fusion group at a time.

The ``fuse`` pass (``passes/fuse.py``) predicts, per group, the DRAM bytes fusion saves and the
time that saves (``seconds_before - seconds_after`` of its cost model). Whether the compiled code
earns it is a measurement: each group of a planned model is cut out as a model of its own (its
activation inputs to its output, weights included, ``onnx.utils.Extractor``), compiled for the
target twice through the target's own backend, *fused* (the group's plan kept: one function)
and *unfused* (the plan removed: the backend's usual per-op kernels), and both are timed in
interleaved rounds in one process (``verify/repeat.time_interleaved``). The two outputs must agree
within the target's verify tolerance, or the row says so. The row holds the prediction beside the
measurement, so a user sees per group where the model is right and where it is wrong.

Both variants are built against an empty tuning database, so they differ only in the fusion: the
default rules of the backend against the same rules on the fused function.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.utils

from deploycc.core.numerics import random_feeds, value_specs
from deploycc.targets.backend import get_backend
from deploycc.verify.measure import Protocol, pin_threads
from deploycc.verify.repeat import time_interleaved

GROUP_KEY, TILE_KEY = "deploycc.fusion.group", "deploycc.fusion.tile"


@dataclass
class GroupCut:
    """One planned group as a model of its own, with and without its plan."""

    plan: dict  # the group's entry of the model's ``deploycc.fusion_plan``
    fused: onnx.ModelProto
    unfused: onnx.ModelProto


def cut_groups(model: onnx.ModelProto, plan: dict) -> list[GroupCut]:
    """Every group of ``plan`` (the fuse pass's JSON) cut out of the planned ``model``."""
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    inits = {t.name for t in model.graph.initializer}
    by_name = {n.name: n for n in model.graph.node}
    extractor = onnx.utils.Extractor(model)
    cuts = []
    for group in plan["groups"]:
        nodes = [by_name[n] for n in group["ops"]]
        produced = {o for n in nodes for o in n.output}
        inputs = list(dict.fromkeys(i for n in nodes for i in n.input if i and i not in produced and i not in inits))
        fused = extractor.extract_model(inputs, [group["output"]])
        unfused = onnx.ModelProto()
        unfused.CopyFrom(fused)
        for node in unfused.graph.node:
            kept = [p for p in node.metadata_props if p.key not in (GROUP_KEY, TILE_KEY)]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
        cuts.append(GroupCut(group, fused, unfused))
    return cuts


def measure_group(cut: GroupCut, target, protocol: Protocol, threads: int, workdir: Path) -> dict:
    """The prediction and the measurement of one group, as one table row."""
    runs, outputs, split = [], [], {}
    for label, model in (("unfused", cut.unfused), ("fused", cut.fused)):
        run, out, info = _compiled(model, target, workdir / f"{cut.plan['output']}.{label}".replace("/", "_"), threads)
        runs.append(run)
        outputs.append(out)
        split.update(info.get("fusion", {}).get("split", {}))
    unfused, fused = time_interleaved(runs, protocol, threads)
    predicted_ms = (cut.plan["seconds_before"] - cut.plan["seconds_after"]) * 1e3
    measured_ms = unfused.median_ms - fused.median_ms
    tol = float(target.verify.get("atol_rel", 1e-4)) * float(np.max(np.abs(outputs[0]))) + 1e-6
    return {
        "ops": _op_summary(cut.fused),
        "tile": "x".join(str(t) for t in cut.plan["tile"]),
        "dram_saved_mb": round((cut.plan["dram_before"] - cut.plan["dram_after"]) / 1e6, 2),
        "predicted_saved_ms": round(predicted_ms, 3),
        "unfused_ms": round(unfused.median_ms, 3),
        "fused_ms": round(fused.median_ms, 3),
        "measured_saved_ms": round(measured_ms, 3),
        "measured_over_predicted": round(measured_ms / predicted_ms, 2) if predicted_ms else None,
        "saved_by_min_ms": round(unfused.min_ms - fused.min_ms, 3),  # on a loaded machine, the least disturbed
        "outputs_agree": bool(np.max(np.abs(outputs[0] - outputs[1])) <= tol),
        "backend_split": next(iter(split.values()), ""),  # the backend compiled the group unfused: why
    }


def measure_groups(model: onnx.ModelProto, plan: dict, target, protocol: Protocol, threads: int) -> list[dict]:
    """One row per group of ``plan`` (see :func:`measure_group`), in plan order."""
    pin_threads("tvm", threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="deploycc-fusion-gain-") as tmp:
        for cut in cut_groups(model, plan):
            rows.append({"group": cut.plan["id"], **measure_group(cut, target, protocol, threads, Path(tmp))})
    return rows


def _compiled(model: onnx.ModelProto, target, folder: Path, threads: int):
    """(run once, its output, the backend's facts) of ``model`` compiled by ``target``'s backend
    without tuning records."""
    backend = get_backend(target.backend)
    folder.mkdir(parents=True)
    # a database path with no records: the backend's default rules, no tuning, no shipped records
    result = backend.compile(model, target, folder, {"tuning_db": str(folder / "no-tuning")})
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = value_specs([i for i in model.graph.input if i.name not in inits])
    manifest = {
        "backend_info": result.info,
        "inputs": [s.to_dict() for s in graph_inputs],
        "outputs": [s.to_dict() for s in value_specs(model.graph.output)],
        "runtime": {"threads": threads},
    }
    session = backend.load(folder, manifest)
    feeds = random_feeds(session.inputs, 0)
    out = session.run(feeds)[0]
    return session.timed_runner(feeds), out, result.info


def _op_summary(model: onnx.ModelProto) -> str:
    """The group's ops in order, runs of one op type counted (``Conv,Relu,Conv,Add``)."""
    kinds = [n.op_type for n in model.graph.node]
    counts = Counter(kinds)
    return ",".join(kinds) if len(kinds) <= 8 else ", ".join(f"{k} x{v}" for k, v in counts.items())
