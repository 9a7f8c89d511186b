"""TVM CPU benchmark: is deploycc's TVM code worth shipping next to ONNX Runtime?

In one run and one process, per zoo SqueezeNAS net at its published input (1x3x1024x2048):
the plain ONNX Runtime session on the exported ONNX (default optimizations; the baseline a user
would pick), `deploycc build --target cpu-ort`, `--target cpu` untuned (deploycc's default CPU
schedules, an empty tuning database), `--target cpu` tuned (only with ``--tuning-db``, built
with ``--tune-trials``; otherwise "not run"), and PyTorch eager. Everything is built first and
then timed in interleaved rounds (``verify/repeat.time_interleaved``: each round runs every
contender ``--runs-per-round`` times, the order rotating), because on a VM whose CPU speed drifts
by 15-20 % over seconds, contenders timed one after another are not comparable; ratios are of
medians from the same rounds. Also build seconds (a tuned build's include its tuning) and the
load average before and after each net (the machine is shared; say so next to the figures).

    python bench/bench_tvm.py [--nets mac_small,lat_small] [--threads 2] [--tuning-db DIR --tune-trials N]
"""

from __future__ import annotations

import os

# Three runtimes share two cores here, timed in turns: a thread pool that spins after its run
# (ONNX Runtime's, TVM's, OpenMP's) takes the cores from the next contender. On mac_small the
# spread of the kept rounds was 45-60 % (cpu-ort, TVM) with spinning pools and 19-40 % without
# (TVM's median 241 and 247 ms, then on one thread: see targets/tvm/threads.py). So no pool spins;
# set before the runtimes are imported.
os.environ.setdefault("TVM_THREAD_POOL_SPIN_COUNT", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from deploycc.core.shapes import parse_shape
from deploycc.models import build_module, export_onnx, resolve_arch
from deploycc.pipeline.pipeline import BuildOptions, build
from deploycc.pipeline.runtime import open_artifact
from deploycc.verify.measure import Protocol, load_average, machine_facts, pin_threads
from deploycc.verify.repeat import time_interleaved

NETS = ["mac_small", "lat_small", "mac_large", "lat_large", "mac_xlarge", "lat_xlarge"]


def bench_net(name: str, shape, args, protocol: Protocol, workdir: Path) -> dict:
    row = {"net": name, "load_before": load_average()}
    feeds = {"image": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    onnx_path = export_onnx(resolve_arch(name), workdir / f"{name}.onnx", input_shape=list(shape))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    contenders = {"ort": lambda: sess.run(None, {in_name: feeds["image"]})}
    runs = [("cpu-ort", "cpu-ort", {}), ("cpu_untuned", "cpu", {"tuning_db": str(workdir / "empty-db")})]
    if args.tuning_db:
        runs.append(
            (
                "cpu_tuned",
                "cpu",
                {"tuning_db": args.tuning_db, "tune_trials": args.tune_trials, "trials_per_task": args.trials_per_task},
            )
        )
    else:
        row["cpu_tuned_ms"] = "not run (no --tuning-db)"
    for label, target, extra in runs:
        out = workdir / f"{name}.{label}"
        start = time.perf_counter()
        result = build(name, target, out, BuildOptions(input_shape=shape, threads=args.threads, **extra))
        row[f"{label}_build_s"] = round(time.perf_counter() - start, 1)
        if label == "cpu_tuned":
            row["tuning"] = {k: result.manifest["backend_info"].get(k) for k in ("tuning_space", "schedules")}
        manifest, session = open_artifact(out, args.threads)
        pin_threads(manifest.get("backend", ""), args.threads)
        if manifest.get("backend") == "ort":  # the artifact's own session options, without spinning
            so = session._sess.get_session_options()
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session._sess = ort.InferenceSession(session._sess._model_path, so, providers=["CPUExecutionProvider"])
        contenders[label] = session.timed_runner(feeds)
    torch.set_num_threads(args.threads)
    module = build_module(resolve_arch(name)).eval()
    x = torch.from_numpy(feeds["image"])

    def eager():
        with torch.inference_mode():
            module(x)

    contenders["torch"] = eager
    latencies = time_interleaved(list(contenders.values()), protocol, args.threads)
    for label, latency in zip(contenders, latencies):
        row[f"{label}_ms"] = _median(latency)
        row[f"{label}_spread_pct"] = latency.spread_pct
    for key in [k for k in row if k.endswith("_ms") and k != "ort_ms" and isinstance(row[k], float)]:
        row[key.replace("_ms", "_vs_ort")] = round(row[key] / row["ort_ms"], 2)
    row["load_after"] = load_average()
    return row


def _median(latency) -> float:
    return round(latency.median_ms, 1)


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
    keys = list(dict.fromkeys(k for r in rows for k in r))
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
