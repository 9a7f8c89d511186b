"""Commands about the toolbox itself and graph-only work: ``targets``, ``passes``, ``optimize``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import onnx
import typer

from deploycc.passes import PASSES, resolve_passes
from deploycc.targets import list_targets, load_target

from .cli import app
from .passmanager import PassContext, run_passes
from .report import emit, table
from .shapes import parse_input_shapes
from .sources import load_source

JSON = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


@app.command("targets")
def targets_cmd(as_json: bool = JSON):
    """List the targets with their backend, precision and compute-to-bandwidth ratio."""
    rows = []
    for t in list_targets():
        peak = t.hardware.get("peak_ops", {}).get(t.precision)
        bw = t.hardware.get("dram_bandwidth")
        rows.append({"name": t.name, "backend": t.backend, "precision": t.precision,
                     "peak_ops": peak, "dram_bandwidth": bw, "ops_per_byte": t.ops_per_byte(),
                     "onchip_memory": t.hardware.get("onchip_memory"), "passes": list(t.passes),
                     "description": t.description})
    emit({"targets": rows}, as_json, lambda c, d: c.print(table(
        "targets", ["name", "backend", "precision", "peak ops/s", "DRAM B/s", "ops/byte", "passes"],
        [[r["name"], r["backend"], r["precision"], _si(r["peak_ops"]), _si(r["dram_bandwidth"]),
          f"{r['ops_per_byte']:.1f}" if r["ops_per_byte"] else "-", ",".join(r["passes"])]
         for r in d["targets"]])))


def _si(x) -> str:
    if not x:
        return "-"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:g}"


@app.command("passes")
def passes_cmd(as_json: bool = JSON):
    """List the graph passes, one line each."""
    rows = [{"name": name, "summary": cls.summary} for name, cls in PASSES.items()]
    emit({"passes": rows}, as_json, lambda c, d: c.print(table(
        "passes", ["name", "what it does"], [[r["name"], r["summary"]] for r in d["passes"]])))


@app.command("optimize")
def optimize_cmd(
    model: str = typer.Argument(..., help="ONNX file, architecture .json or zoo name"),
    output: Path = typer.Option(..., "--output", "-o", help="optimized ONNX file"),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="target whose rules and default passes apply"),
    passes: Optional[str] = typer.Option(None, "--passes", help="comma-separated passes (default: the target's)"),
    trace: Optional[Path] = typer.Option(None, "--trace", help="write a JSON trace of every pass here"),
    input_shape: Optional[str] = typer.Option(None, "--input-shape"),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="compare numerics after every pass"),
    force: bool = typer.Option(False, "--force", help="rewrite even where the target would not need it"),
    as_json: bool = JSON,
):
    """Run graph passes on MODEL with verification, and write the optimized ONNX model."""
    tgt = load_target(target) if target else None
    names = [p.strip() for p in passes.split(",") if p.strip()] if passes else list(tgt.passes if tgt else PASSES)
    classes = resolve_passes(names)
    ctx = PassContext(target=tgt, force=force)
    with tempfile.TemporaryDirectory(prefix="deploycc-") as scratch:
        graph, _ = load_source(model, Path(scratch), parse_input_shapes(input_shape))
    graph, records = run_passes(graph, [c(ctx) for c in classes], verify=verify)
    trace_data = {"model": model, "target": tgt.name if tgt else None, "passes": [r.to_dict() for r in records]}
    _atomic_write_bytes(output, graph.SerializeToString())
    if trace:
        _atomic_write_bytes(trace, json.dumps(trace_data, indent=2).encode())
    emit(trace_data, as_json, _render_trace)


def _render_trace(console, data: dict) -> None:
    rows = [[p["name"], f"{p['nodes_before']}->{p['nodes_after']}", len(p["rewrites"]), len(p["refusals"]),
             f"{p['seconds'] * 1e3:.1f}", "yes" if p["verification"] else "-"] for p in data["passes"]]
    console.print(table("passes", ["pass", "nodes", "rewrites", "refusals", "ms", "verified"], rows))
    for p in data["passes"]:
        for r in p["refusals"]:
            console.print(f"  [yellow]{p['name']} left {r['node']} alone:[/] {r['reason']}")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data)
    tmp.replace(path)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    _atomic_write_bytes(path, model.SerializeToString())
