"""The INT8-vs-FP32 floor, measured: for each (net, INT8 target) cell, the clean Q/DQ model and the
same model with every calibration range scaled by a factor, against the FP32 model on the build's
own held-out street scenes (synthetic, seed 1, two of them).

    nice -n 10 .venv/bin/python bench/bench_floor.py --cells small  [--out floor.jsonl]
    nice -n 10 .venv/bin/python bench/bench_floor.py --cells trained [--out floor.jsonl]
    .venv/bin/python bench/bench_floor.py --table floor.jsonl [--markdown]

Per factor: the worst cosine, the worst argmax (pixel) agreement, the agreement-mIoU drop (points:
100 x (1 - mIoU of the INT8 argmax taking the FP32 argmax as ground truth), what
``--max-miou-drop`` budgets) and the *cost* of the distortion (its drop minus the clean drop).
``--table`` prints the measured table and, per target, what each candidate floor would have to be
to pass every clean cell and fail every distortion costing >= 1 point, and whether one exists. The
ranges-rescale probe (``deploycc.quantize.floor``) is read off the same grid: a factor's probe gain
is its drop minus the better of its x0.5 and x2 neighbours'.

Q/DQ models run on ONNX Runtime with optimizations off (their exact semantics, which the build's
own check holds every INT8 artifact to). Nets with published weights (mac_small, lat_small) load
them from ../shared/data/squeezenas.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "data" / "squeezenas"
STREET_REF = REPO / "models" / "zoo" / "trained" / "street_ref.onnx"
TARGETS = ("cpu-int8", "xavier-int8", "xavier-dla-int8")
FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 5.5, 8.0, 11.0, 22.0)
DISTORTIONS = (0.25, 0.5, 2.0, 4.0, 11.0)  # the ones the table judges; the others are probe neighbours
CELLS = {
    # the sizes tests/pipeline/test_matrix_subset.py builds, the fault-injection net, street_ref
    "small": [
        ("mac_xlarge", (1, 3, 32, 32), None),
        ("fbnet_a", (1, 3, 64, 64), None),
        ("tiny", (1, 3, 32, 32), None),
        (str(STREET_REF), None, None),
    ],
    "trained": [
        ("mac_small", (1, 3, 784, 1568), str(WEIGHTS / "mac_small.pth")),
        ("lat_small", (1, 3, 784, 1568), str(WEIGHTS / "lat_small.pth")),
    ],
}


def measure_cell(net: str, target_name: str, shape, weights, work: Path) -> dict:
    from deploycc.core.numerics import run_reference
    from deploycc.core.scratch import scratch_dir
    from deploycc.pipeline.pipeline import BuildOptions, _run_target_passes, simplify
    from deploycc.pipeline.sources import load_source
    from deploycc.quantize.floor import fp32_figures, rescaled_qdq
    from deploycc.quantize.stage import quantize_for_target, shared_scale_ops
    from deploycc.targets import load_target

    target = load_target(target_name)
    options = BuildOptions(input_shape=shape, weights=weights)
    if net == "tiny":
        sys.path.insert(0, str(REPO / "bench"))
        from fault_injection import tiny_model

        net = str(tiny_model(work / "tiny.onnx"))
    with scratch_dir() as scratch:
        original, source = load_source(net, Path(scratch), shape, weights)
        graph, _ = _run_target_passes(simplify(original, source), target, options)
        quant = quantize_for_target(graph, original, target, options)
    assert quant is not None and quant.verify_feeds is not None
    refs = [run_reference(original, f) for f in quant.verify_feeds]
    rows = {}
    for factor in FACTORS:
        qdq = quant.qdq if factor == 1.0 else rescaled_qdq(quant, shared_scale_ops(target), factor)
        rows[str(factor)] = fp32_figures(refs, [run_reference(qdq, f) for f in quant.verify_feeds])
    return {"net": Path(net).stem, "target": target_name, "shape": list(graph_shape(graph)), "factors": rows}


def graph_shape(graph) -> list[int]:
    return [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]


def measure(cells: str, out: Path, targets: list[str]) -> None:
    os.environ.setdefault("DEPLOYCC_CACHE", str(Path(tempfile.gettempdir()) / "bench-floor-cache"))
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as work:
        for net, shape, weights in CELLS[cells]:
            for target in targets:
                start = time.perf_counter()
                row = measure_cell(net, target, shape, weights, Path(work))
                row["seconds"] = round(time.perf_counter() - start, 1)
                row["load"] = os.getloadavg()[0]
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{row['net']}@{target}: {row['seconds']} s", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", choices=sorted(CELLS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--out", type=Path, default=Path("floor.jsonl"))
    ap.add_argument("--table", type=Path, help="print the table of a measured .jsonl and the floors it allows")
    ap.add_argument("--markdown", action="store_true", help="with --table: the table of docs/targets.md")
    args = ap.parse_args(argv)
    if args.table:
        sys.path.insert(0, str(REPO / "bench"))
        from floor_table import print_markdown, print_table

        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]
        (print_markdown if args.markdown else print_table)(rows)
        return 0
    if not args.cells:
        ap.error("--cells or --table")
    measure(args.cells, args.out, args.targets.split(","))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
