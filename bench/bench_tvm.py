"""TVM CPU benchmark: is deploycc's TVM code worth shipping next to the runtimes a user already has?

Per zoo SqueezeNAS net at its published input (1x3x1024x2048), in one run: the plain ONNX Runtime
session on the exported ONNX (default optimizations; the baseline a user would pick, and the
denominator of every ratio), OpenVINO's CPU runtime on the same file (``requirements-bench.txt``;
"not run: <reason>" where it is absent), ``deploycc build --target cpu-ort``, ``--target cpu``
as a user gets it (no options: the shipped tuning records where this CPU kind has them, the
default CPU rules elsewhere; ``cpu_schedules`` says how many PrimFuncs came from each),
``--target cpu --passes fold-bn,fuse`` (``cpu_fused``: every group of the fuse plan one kernel,
scheduled band by band by ``targets/tvm/fused_chain.py``; tuning records do not apply to it),
``--target cpu`` tuned (only with ``--tuning-db``, built with ``--tune-trials``; otherwise
"not run"), ``cpu_nchwc`` (``--target cpu`` with ``[tvm] layout = "NCHWc"``: convolutions, pooling
and their epilogues in the channel-blocked layout, ``targets/tvm/blocked_layout.py``) and PyTorch
eager. ``--only ort,cpu,cpu_nchwc`` times a subset (the others are neither built nor run).

Everything is built first. Each contender then runs in a worker process of its own
(``verify/workers.py``), which times its own runs and reports its peak resident memory
(``*_peak_mb``: VmHWM of that process, runtime imports included; ``*_base_mb`` is the worker's
memory before the contender was opened, the interpreter and numpy). No thread pool spins once a
run has ended (``verify/peers.py``: ONNX Runtime ``allow_spinning=0``, deploycc's own ``cpu-ort``
session reopened with it, TVM and OpenMP pools passive), because the next contender's turn would
lose its cores to it. Contenders are timed in interleaved rounds (each round runs every contender
``--runs-per-round`` times, the order rotating), because on a VM whose CPU speed drifts by 15-20 %
over seconds, contenders timed one after another are not comparable; ratios are of medians from the
same rounds. Also build seconds (a tuned build's include its tuning) and the load average before
and after each net (the machine may be shared: say so next to the figures).

    python bench/bench_tvm.py [--nets mac_small,lat_small] [--shape 1x3x1024x2048] [--threads 2]
                              [--tuning-db DIR --tune-trials N] [--only LABEL,...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from deploycc.core.shapes import parse_shape
from deploycc.models import export_onnx, resolve_arch
from deploycc.pipeline.pipeline import BuildOptions, build
from deploycc.verify.measure import Protocol, load_average, machine_facts
from deploycc.verify.workers import Worker, time_workers

NETS = ["mac_small", "lat_small", "mac_large", "lat_large", "mac_xlarge", "lat_xlarge"]


def build_artifacts(name: str, shape, args, workdir: Path, row: dict) -> dict[str, Path]:
    """The deploycc artifacts of ``name``: label -> folder; build seconds into ``row``."""
    runs = [
        ("cpu-ort", "cpu-ort", {}),
        ("cpu", "cpu", {}),
        ("cpu_fused", "cpu", {"passes": ["fold-bn", "fuse"]}),
        ("cpu_nchwc", str(blocked_target(workdir)), {}),
    ]
    if args.tuning_db:
        tuned = {"tuning_db": args.tuning_db, "tune_trials": args.tune_trials, "trials_per_task": args.trials_per_task}
        runs.append(("cpu_tuned", "cpu", tuned))
    else:
        row["cpu_tuned_ms"] = "not run: no --tuning-db"
    built = {}
    for label, target, extra in runs:
        if not wanted(label, args):
            continue
        out = workdir / f"{name}.{label}"
        start = time.perf_counter()
        result = build(name, target, out, BuildOptions(input_shape=shape, threads=args.threads, **extra))
        row[f"{label}_build_s"] = round(time.perf_counter() - start, 1)
        if label.startswith("cpu_") or label == "cpu":
            info = result.manifest["backend_info"]
            row[f"{label}_schedules"] = info.get("schedules")
            if info.get("fusion", {}).get("groups_planned"):
                row[f"{label}_groups"] = info["fusion"]["groups_fused"]
        built[label] = out
    return built


def blocked_target(workdir: Path) -> Path:
    """The ``cpu`` target file with ``[tvm] layout = "NCHWc"``, written into ``workdir``."""
    text = (Path(__file__).resolve().parents[1] / "targets" / "cpu.toml").read_text()
    text = text.replace('name = "cpu"', 'name = "cpu-nchwc"', 1).replace("[tvm]", '[tvm]\nlayout = "NCHWc"', 1)
    path = workdir / "cpu-nchwc.toml"
    path.write_text(text)
    return path


def wanted(label: str, args) -> bool:
    return not args.only or label in args.only.split(",")


def contender_specs(name: str, onnx_path: Path, artifacts: dict[str, Path]) -> dict[str, dict]:
    """Label -> worker spec, the plain ONNX Runtime session first (the ratios' denominator)."""
    specs = {
        "ort": {"kind": "onnxruntime", "model": str(onnx_path)},
        "openvino": {"kind": "openvino", "model": str(onnx_path)},
    }
    specs.update({label: {"kind": "artifact", "path": str(path)} for label, path in artifacts.items()})
    specs["torch"] = {"kind": "torch", "net": name}
    return specs


def bench_net(name: str, shape, args, protocol: Protocol, workdir: Path) -> dict:
    row: dict = {"net": name, "load_before": load_average()}
    onnx_path = export_onnx(resolve_arch(name), workdir / f"{name}.onnx", input_shape=list(shape))
    artifacts = build_artifacts(name, shape, args, workdir, row)
    specs = {k: v for k, v in contender_specs(name, onnx_path, artifacts).items() if wanted(k, args)}
    row["contenders"] = list(specs) + ([] if "cpu_tuned" in specs else ["cpu_tuned"])
    workers = {}
    try:
        for label, spec in specs.items():
            worker = Worker({**spec, "shape": list(shape), "threads": args.threads})
            if worker.not_run:
                row[f"{label}_ms"] = f"not run: {worker.not_run}"
                worker.close()
            else:
                workers[label] = worker
        latencies = time_workers(list(workers.values()), protocol, args.threads)
    finally:
        memory = {label: w.close() for label, w in workers.items()}
    for label, latency in zip(workers, latencies):
        row[f"{label}_ms"] = round(latency.median_ms, 1)
        row[f"{label}_spread_pct"] = round(latency.spread_pct or 0.0, 1)
        row[f"{label}_peak_mb"] = memory[label].get("peak_rss_mb")
        row[f"{label}_base_mb"] = memory[label].get("rss_before_open_mb")
    for label in workers:
        if label != "ort" and "ort" in workers:
            row[f"{label}_vs_ort"] = round(row[f"{label}_ms"] / row["ort_ms"], 2)
    row["load_after"] = load_average()
    return row


def print_table(row: dict) -> None:
    """One net's contenders as a markdown table: median, ratio to ORT, spread, peak memory, build."""
    labels = row["contenders"]
    print(f"\n{row['net']} (load {row['load_before']} -> {row['load_after']})")
    print("| contender | median ms | vs ort | spread % | peak MB | worker base MB | build s |")
    print("|---|---|---|---|---|---|---|")
    for label in labels:
        cells = [row.get(f"{label}_{k}", "") for k in ("ms", "vs_ort", "spread_pct", "peak_mb", "base_mb", "build_s")]
        print(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--shape", default="1x3x1024x2048")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs-per-round", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="each contender's time budget")
    parser.add_argument("--tuning-db", default=None, help="tuning database for the tuned `cpu` row")
    parser.add_argument("--tune-trials", type=int, default=0, help="tune into --tuning-db first")
    parser.add_argument("--trials-per-task", type=int, default=None)
    parser.add_argument("--only", default=None, help="time only these contenders (comma list of labels)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    shape = parse_shape(args.shape)
    protocol = Protocol(
        warmup=1,
        min_repeats=args.runs_per_round,
        max_repeats=args.rounds * args.runs_per_round,
        max_seconds=args.max_seconds,
        rounds=args.rounds,
        interleave=8,
        reject_mad=3.0,
    )
    print(json.dumps({"machine": machine_facts(), "threads": args.threads, "shape": args.shape}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="deploycc-bench-tvm-") as tmp:
        for name in args.nets.split(","):
            rows.append(bench_net(name, shape, args, protocol, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    for r in rows:
        print_table(r)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
