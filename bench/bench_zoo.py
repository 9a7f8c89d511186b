"""Zoo benchmark: build time and latency of TVM (`cpu`), ONNX Runtime (`cpu-ort`) and PyTorch eager.

For each zoo SqueezeNAS net at its published input (1x3x1024x2048 by default), in one run, with
the same thread count for every runtime: build time per target, median latency by the common
protocol, and the ratios against ONNX Runtime measured in the same run. ``--tuning-db`` builds
the `cpu` artifact with a MetaSchedule database (``--tune-trials`` to tune into it first).

    python bench/bench_zoo.py [--nets mac_small,lat_small] [--shape 1x3x1024x2048] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deploycc.core.shapes import parse_shape
from deploycc.models import build_module, resolve_arch
from deploycc.pipeline.pipeline import BuildOptions, build
from deploycc.pipeline.runtime import open_artifact
from deploycc.verify.measure import Protocol, machine_facts, time_callable, time_session

NETS = ["mac_small", "lat_small", "mac_large", "lat_large", "mac_xlarge", "lat_xlarge"]


def bench_net(name: str, shape, threads: int, protocol: Protocol, workdir: Path, args) -> dict:
    row = {"net": name, "shape": list(shape)}
    feeds = {"image": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    for target in args.targets:
        options = BuildOptions(
            input_shape=shape,
            threads=threads,
            tuning_db=args.tuning_db,
            tune_trials=args.tune_trials if target == "cpu" else 0,
            trials_per_task=args.trials_per_task,
        )
        start = time.perf_counter()
        build(name, target, workdir / f"{name}.{target}", options)
        row[f"{target}_build_s"] = round(time.perf_counter() - start, 2)
        _, session = open_artifact(workdir / f"{name}.{target}", threads)
        row[f"{target}_ms"] = round(time_session(session, feeds, protocol, threads).median_ms, 2)
    torch.set_num_threads(threads)
    module = build_module(resolve_arch(name))
    x = torch.from_numpy(feeds["image"])
    with torch.inference_mode():
        row["torch_ms"] = round(time_callable(lambda: module(x), protocol, threads).median_ms, 2)
    base = row.get("cpu-ort_ms")
    for key in [k for k in row if k.endswith("_ms") and k != "cpu-ort_ms"]:
        if base:
            row[key.replace("_ms", "_vs_ort")] = round(row[key] / base, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--shape", default="1x3x1024x2048")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--targets", default="cpu-ort,cpu")
    parser.add_argument("--max-repeats", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--tuning-db", default=None)
    parser.add_argument("--tune-trials", type=int, default=0)
    parser.add_argument("--trials-per-task", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    args.targets = args.targets.split(",")
    shape = parse_shape(args.shape)
    protocol = Protocol(warmup=1, min_repeats=3, max_repeats=args.max_repeats, max_seconds=args.max_seconds)
    print(json.dumps({"machine": machine_facts(), "threads": args.threads, "shape": args.shape}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="deploycc-bench-") as tmp:
        for name in args.nets.split(","):
            rows.append(bench_net(name, shape, args.threads, protocol, Path(tmp), args))
            print(json.dumps(rows[-1]), flush=True)
    _print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def _print_table(rows: list[dict]) -> None:
    keys = [k for k in rows[0] if k not in ("shape",)]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
