"""Commands about models: ``export`` (architecture -> ONNX) and ``inspect`` (ops, shapes, MACs)."""

from __future__ import annotations

from pathlib import Path

import typer

from deploycc.cli.options import JSON, check_report_path, overwrite_option, report_option
from deploycc.cli.output import emit, table
from deploycc.cli.reports import write_inspect_report
from deploycc.core.loader import graph_inputs
from deploycc.core.macs import layer_costs, op_histogram, total_params
from deploycc.core.scratch import scratch_dir
from deploycc.core.shapes import parse_input_shapes, parse_shape
from deploycc.pipeline.sources import load_source

app = typer.Typer()  # merged into the root command by deploycc.cli.main


@app.command("export")
def export_cmd(
    arch: str = typer.Argument(..., help="architecture .json file or zoo name"),
    output: Path = typer.Option(..., "--output", "-o", help="ONNX file to write"),
    input_shape: str | None = typer.Option(None, "--input-shape", help="1x3xHxW (default: the architecture's)"),
    weights: str | None = typer.Option(None, "--weights", help="state dict (.pth) in the published layout"),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (>= 17)"),
    overwrite: bool = overwrite_option("the --output file"),
):
    """Export an architecture to ONNX (BatchNorm kept as BatchNormalization nodes)."""
    from deploycc.core.errors import UserError
    from deploycc.core.outputs import check_output
    from deploycc.models import export_onnx, resolve_arch

    output = check_output(output, [arch, weights], overwrite, folder=False, ours=None)
    if opset < 17:
        raise UserError(f"--opset {opset}: deploycc exports opset 17 or newer")
    arch_obj = resolve_arch(arch)
    shape = parse_shape(input_shape) if input_shape else None
    path = export_onnx(arch_obj, output, input_shape=shape, weights=weights, opset=opset)
    typer.echo(f"exported {arch_obj.name} to {path}")


@app.command("inspect")
def inspect_cmd(
    model: str = typer.Argument(..., help="ONNX file, architecture .json or zoo name"),
    input_shape: str | None = typer.Option(None, "--input-shape"),
    layers: bool = typer.Option(True, "--layers/--no-layers", help="print the per-layer table"),
    target: str | None = typer.Option(
        None,
        "--target",
        "-t",
        help="also report, per node, accelerator or "
        "fallback under this target's legality rules, before and after its passes",
    ),
    verify_passes: bool = typer.Option(
        False, "--verify-passes/--no-verify-passes", help="with --target: check numerics after each pass"
    ),
    report: Path | None = report_option("the MACs and parameters per layer (and the legality map with --target)"),
    overwrite: bool = overwrite_option("the --report file"),
    as_json: bool = JSON,
):
    """Op histogram, shapes, MACs and parameters per layer and in total, from the ONNX graph."""
    check_report_path(report, [model], overwrite)
    with scratch_dir() as scratch:
        graph, _ = load_source(model, Path(scratch), parse_input_shapes(input_shape))
    costs = layer_costs(graph)
    data = {
        "model": model,
        "inputs": {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph_inputs(graph)},
        "ops": op_histogram(graph),
        "total_macs": sum(c.macs for c in costs),
        "conv_macs": sum(c.macs for c in costs if c.op in ("Conv", "ConvTranspose")),
        "params": total_params(graph),
        "layers": [
            {"name": c.name, "op": c.op, "shape": list(c.output_shape), "macs": c.macs, "params": c.params}
            for c in costs
        ],
    }
    if target:
        data["legality"] = legality_report(graph, target, verify_passes, Path(model))
    emit(data, as_json, lambda c, d: _render_inspect(c, d, layers))
    if report is not None:
        write_inspect_report(report, data)


def legality_report(graph, target_name: str, verify: bool = False, source: Path = Path("model")) -> dict:
    """Per node, accelerator or fallback and the deciding rule, before and after the target's passes."""
    from deploycc.passes import PassContext, resolve_passes, run_passes
    from deploycc.pipeline.pipeline import simplify
    from deploycc.targets import load_target
    from deploycc.targets.placement import placement_map

    tgt = load_target(target_name)
    if not tgt.legality.get("accelerator"):
        return placement_map(graph, graph, tgt)
    graph = simplify(graph, source)  # what the build's passes start from
    optimized, records = run_passes(
        graph, [c(PassContext(target=tgt)) for c in resolve_passes(list(tgt.passes))], verify=verify
    )
    return {
        **placement_map(graph, optimized, tgt),
        "passes": [r.name for r in records],
        "refusals": [dict(r, name=rec.name) for rec in records for r in rec.log.refusals],
    }


def _render_inspect(console, data: dict, layers: bool) -> None:
    if layers:
        rows = [
            [
                layer["name"],
                layer["op"],
                "x".join(map(str, layer["shape"])),
                f"{layer['macs']:,}",
                f"{layer['params']:,}",
            ]
            for layer in data["layers"]
            if layer["macs"] or layer["params"]
        ]
        console.print(table("layers with MACs or parameters", ["node", "op", "output", "MACs", "params"], rows))
    console.print(table("ops", ["op", "count"], [[k, v] for k, v in data["ops"].items()]))
    if "legality" in data:
        _render_legality(console, data["legality"])
    console.print(
        f"inputs {data['inputs']}  total MACs {data['total_macs'] / 1e9:.3f} G "
        f"(conv {data['conv_macs'] / 1e9:.3f} G)  parameters {data['params']:,}"
    )


def _render_legality(console, rep: dict) -> None:
    if "note" in rep:
        console.print(rep["note"])
        return
    for when in ("before", "after"):
        part = rep[when]
        s = part["summary"]
        rows = [
            [p["node"], p["op"], p["unit"], p["rule"], "; ".join(p["reasons"])]
            for p in part["nodes"]
            if p["unit"] not in (s["accelerator"], "folded")
        ]
        title = (
            (
                f"{rep['target']} {when} passes ({', '.join(rep['passes']) or 'none'}): "
                f"{s['on_accelerator']}/{s['layers']} "
                f"layers on {s['accelerator']}, {s['fallbacks']} fall back to {s['fallback']}"
            )
            if when == "after"
            else (
                f"{rep['target']} before passes: {s['on_accelerator']}/{s['layers']} layers on {s['accelerator']}, "
                f"{s['fallbacks']} fall back to {s['fallback']}"
            )
        )
        console.print(table(title, ["node", "op", "runs on", "rule", "why"], rows))
    for r in rep.get("refusals", []):
        console.print(f"  [yellow]{r['name']} left {r['node']} alone:[/] {r['reason']}")
