"""Commands about the toolbox itself and graph-only work: ``targets``, ``passes``, ``optimize``."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import typer

from deploycc.cli.options import JSON, overwrite_option, split_list
from deploycc.cli.output import emit, table
from deploycc.core.errors import UserError
from deploycc.core.outputs import check_output, write_output_bytes
from deploycc.core.scratch import scratch_dir
from deploycc.core.shapes import parse_input_shapes
from deploycc.pipeline.sources import load_source
from deploycc.targets import list_targets, load_target

# deploycc.passes is imported where it is used: it imports onnx_ir (and that sympy), which
# `deploycc targets` and `--help` do not need.
app = typer.Typer()  # merged into the root command by deploycc.cli.main


@app.command("targets")
def targets_cmd(as_json: bool = JSON):
    """List the targets with their backend, precision and compute-to-bandwidth ratio."""
    rows = []
    for t in list_targets():
        rows.append(
            {
                "name": t.name,
                "backend": t.backend,
                "precision": t.precision,
                "peak_ops": t.peak_ops(),
                "dram_bandwidth": t.dram_bandwidth(),
                "ops_per_byte": t.ops_per_byte(),
                "onchip_memory": t.onchip_memory(),
                "passes": list(t.passes),
                "description": t.description,
            }
        )
    emit(
        {"targets": rows},
        as_json,
        lambda c, d: c.print(
            table(
                "targets",
                ["name", "backend", "precision", "peak ops/s", "DRAM B/s", "ops/byte", "passes"],
                [
                    [
                        r["name"],
                        r["backend"],
                        r["precision"],
                        _si(r["peak_ops"]),
                        _si(r["dram_bandwidth"]),
                        f"{r['ops_per_byte']:.1f}" if r["ops_per_byte"] else "-",
                        ",".join(r["passes"]),
                    ]
                    for r in d["targets"]
                ],
            )
        ),
    )


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
    from deploycc.passes import PASSES

    rows = [cls.describe() for cls in PASSES.values()]
    emit(
        {"passes": rows},
        as_json,
        lambda c, d: c.print(
            table("passes", ["name", "what it does"], [[r["name"], r["summary"]] for r in d["passes"]])
        ),
    )


@app.command("optimize")
def optimize_cmd(
    model: str = typer.Argument(..., help="ONNX file, architecture .json or zoo name"),
    output: Path = typer.Option(..., "--output", "-o", help="optimized ONNX file"),
    target: str | None = typer.Option(None, "--target", "-t", help="target whose rules and default passes apply"),
    passes: str | None = typer.Option(None, "--passes", help="comma-separated passes (default: the target's)"),
    trace: Path | None = typer.Option(None, "--trace", help="write a JSON trace of every pass here"),
    input_shape: str | None = typer.Option(None, "--input-shape"),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="compare numerics after every pass"),
    force: bool = typer.Option(False, "--force", help="rewrite even where the target would not need it"),
    pass_option: list[str] | None = typer.Option(
        None,
        "--pass-option",
        help="KEY=VALUE for a pass, repeatable (e.g. rewrite-dilated.method=zero-insert, "
        "fuse.alpha=0.5, fuse.max_ops=10)",
    ),
    overwrite: bool = overwrite_option("the --output and --trace files"),
    as_json: bool = JSON,
):
    """Run graph passes on MODEL with verification, and write the optimized ONNX model."""
    from deploycc.passes import PASSES, PassContext, resolve_passes, run_passes

    output = check_output(output, [model, trace], overwrite, folder=False, ours=None)
    trace = trace and check_output(trace, [model, output], overwrite, option="--trace", folder=False, ours=None)
    if trace == output:
        raise UserError(f"--trace {trace}: is the --output file; name another")
    tgt = load_target(target) if target else None
    names = (split_list(passes) or []) if passes else list(tgt.passes if tgt else PASSES)
    classes = resolve_passes(names)
    ctx = PassContext(target=tgt, force=force, options=parse_pass_options(pass_option or []))
    with scratch_dir() as scratch:
        graph, _ = load_source(model, Path(scratch), parse_input_shapes(input_shape))
    graph, records = run_passes(graph, [c(ctx) for c in classes], verify=verify)
    trace_data = {"model": model, "target": tgt.name if tgt else None, "passes": [r.to_dict() for r in records]}
    _atomic_write_bytes(output, graph.SerializeToString())
    if trace:
        _atomic_write_bytes(trace, json.dumps(trace_data, indent=2).encode())
    emit(trace_data, as_json, _render_trace)


def _render_trace(console, data: dict) -> None:
    rows = [
        [
            p["name"],
            f"{p['nodes_before']}->{p['nodes_after']}",
            len(p["rewrites"]),
            len(p["refusals"]),
            f"{p['seconds']['pass'] * 1e3:.1f}",
            f"{p['seconds']['verify']:.2f}" if p["verification"] else "-",
        ]
        for p in data["passes"]
    ]
    console.print(table("passes", ["pass", "nodes", "rewrites", "refusals", "pass ms", "verified (s)"], rows))
    for p in data["passes"]:
        for r in p["refusals"]:
            console.print(f"  [yellow]{p['name']} left {r['node']} alone:[/] {r['reason']}", highlight=False)
        legality = p["stats"].get("legality")
        if legality:
            console.print(
                f"  {p['name']}: {legality['dilated_convs']} dilated conv(s), rewritten "
                f"{legality['rewritten'] or 'none'}; {legality['verdict']}",
                highlight=False,
            )
        if "dram_bytes_unfused" in p["stats"]:
            _render_fusion(console, p["stats"])


def _render_fusion(console, stats: dict) -> None:
    groups = stats["groups"]
    console.print(
        f"  fuse: {len(groups)} group(s) within {stats['budget']} B (alpha {stats['alpha']} x on-chip "
        f"{stats['onchip_memory']} B); estimated DRAM {stats['dram_bytes_unfused'] / 1e6:.1f} -> "
        f"{stats['dram_bytes_fused'] / 1e6:.1f} MB, recompute {stats['recompute_macs'] / 1e6:.1f} M MACs",
        highlight=False,
    )
    rows = [
        [
            g["id"],
            len(g["ops"]),
            f"{g['tile'][0]}x{g['tile'][1]}",
            g["working_set"],
            f"{g['dram_before'] / 1e6:.2f}",
            f"{g['dram_after'] / 1e6:.2f}",
            g["recompute_macs"],
        ]
        for g in groups
    ]
    if rows:
        console.print(
            table(
                "fusion groups",
                ["group", "ops", "tile", "working set B", "DRAM before MB", "DRAM after MB", "recompute MACs"],
                rows,
            )
        )


def parse_pass_options(items: list[str]) -> dict:
    """``KEY=VALUE`` strings as a dict; numbers become numbers."""
    from deploycc.passes import check_pass_options

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--pass-option {item!r}: expected KEY=VALUE")
        out[key.strip()] = _number(value.strip())
    check_pass_options(out)
    return out


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    write_output_bytes(path, data)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    _atomic_write_bytes(path, model.SerializeToString())
