"""INT8 on this CPU: latency of the Q/DQ model (cpu-int8) against FP32 (cpu-ort) in the same run,
calibration time, output error and agreement-mIoU drop per calibration method and Q/DQ placement.

    nice -n 10 .venv/bin/python bench/bench_int8.py [--nets mac_small,lat_small] [--methods minmax,entropy,percentile]
                                                    [--rounds 5] [--calib 8] [--threads 2]

Nets with published weights (mac_small, lat_small) load them from ../shared/data/squeezenas;
the others use the zoo's seeded random weights. Placements: ``all`` (ORT's default: every op it can
quantize, what a naive ``quantize_static`` does) and ``cpu-fast`` (the cpu-int8 target's: the
data-movement tail before each output stays float). Latency: the FP32 and INT8 sessions run
round-robin, ``--rounds`` times each, medians reported, ratio INT8 / FP32 (calibration seconds:
0.0 where the ranges came from the cache). Error: relative L2 of
the logits and agreement-mIoU drop (points) on held-out synthetic street scenes (seed 1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "data" / "squeezenas"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="mac_small")
    ap.add_argument("--methods", default="minmax,entropy,percentile")
    ap.add_argument("--placements", default="all,cpu-fast")
    ap.add_argument(
        "--activations",
        default="uint8",
        help="uint8 (ORT's fast x86 path: u8s8) and/or int8 (quantize_static's default: s8s8)",
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calib", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="also print ORT's per-op time, FP32 vs INT8")
    args = ap.parse_args(argv)
    print(
        f"{'net':12s} {'method':10s} {'placement':9s} {'act':5s} {'calib s':>8s} {'fp32 ms':>8s} {'int8 ms':>8s} "
        f"{'ratio':>6s} {'rel L2':>7s} {'mIoU drop':>9s}"
    )
    for net in args.nets.split(","):
        bench_net(net, args)
    return 0


def bench_net(net: str, args) -> None:
    from deploycc.quantize.calibration import calibration_set
    from deploycc.quantize.qdq import QuantConfig, calibrate, quantize
    from deploycc.quantize.sensitivity import output_drop
    from deploycc.quantize.stage import tail_exclusions

    fp32, prep = _fp32_graph(net)
    inp = fp32.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    calib = calibration_set(inp.name, shape, prep, None, args.calib)
    held = calibration_set(inp.name, shape, prep, None, 2, seed=1)
    s32 = _session(fp32, args.threads)
    refs = [s32.run(None, f)[0] for f in held.feeds()]
    combos = [
        (m, p, a)
        for m in args.methods.split(",")
        for p in args.placements.split(",")
        for a in args.activations.split(",")
    ]
    for method, placement, act in combos:
        exclude = tuple(tail_exclusions(fp32)) if placement == "cpu-fast" else ()
        cfg = QuantConfig(method=method, symmetric=False, activation_type=act, exclude=exclude)
        start = time.perf_counter()
        ranges = calibrate(fp32, calib, cfg)
        calib_s = time.perf_counter() - start if not ranges.cache_hit else ranges.seconds
        s8 = _session(quantize(fp32, ranges, cfg), args.threads)
        drop = output_drop(refs, [s8.run(None, f)[0] for f in held.feeds()])
        t32, t8 = _round_robin(s32, s8, held.feeds()[0], args.rounds)
        print(
            f"{net:12s} {method:10s} {placement:9s} {act:5s} {calib_s:8.1f} {t32:8.1f} {t8:8.1f} {t8 / t32:6.3f} "
            f"{drop['rel_l2']:7.4f} {drop['miou_drop']:9.3f}",
            flush=True,
        )
        if args.profile:
            q = quantize(fp32, ranges, cfg)
            print(f"  per-op ms (ORT profiler) FP32: {_op_profile(fp32, held.feeds()[0], args.threads)}")
            print(f"  per-op ms (ORT profiler) INT8: {_op_profile(q, held.feeds()[0], args.threads)}", flush=True)


def _fp32_graph(net: str):
    """The zoo net as the build sees it before quantizing: exported, simplified, BN folded."""
    from deploycc.core.loader import load_model
    from deploycc.core.metadata import preprocessing_of
    from deploycc.models import export_onnx, resolve_arch
    from deploycc.passes import PassContext, resolve_passes, run_passes
    from deploycc.pipeline.pipeline import simplify

    weights = WEIGHTS / f"{net}.pth"
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(
            resolve_arch(net), Path(tmp) / f"{net}.onnx", weights=str(weights) if weights.is_file() else None
        )
        model = load_model(path)
    graph, _ = run_passes(simplify(model, path), [c(PassContext()) for c in resolve_passes(["fold-bn"])], verify=False)
    return graph, preprocessing_of(model)


def _session(model, threads: int) -> ort.InferenceSession:
    """What cpu-ort / cpu-int8 ship: all optimizations, and on x86 without VNNI ORT's u8u8 kernels
    (``deploycc.targets.onnxruntime.int8_cpu``: its u8s8 ones saturate there), so INT8 timings depend on the CPU."""
    from deploycc.targets.onnxruntime import int8_cpu

    so = ort.SessionOptions()
    int8_cpu.apply(so)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _op_profile(model, feed, threads: int, runs: int = 3) -> str:
    """Mean ms per run spent in each op type (ORT's profiler, optimized graph as it executes)."""
    import collections
    import json

    from deploycc.targets.onnxruntime import int8_cpu

    so = ort.SessionOptions()
    int8_cpu.apply(so)  # the kernels _session runs (CPU-dependent)
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(tempfile.gettempdir()) / "deploycc-int8-prof")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    sess.run(None, feed)
    for _ in range(runs):
        sess.run(None, feed)
    path = Path(sess.end_profiling())
    events = json.loads(path.read_text())
    path.unlink()
    total: dict = collections.defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            total[e["args"]["op_name"]] += e["dur"] / 1e3 / (runs + 1)
    return ", ".join(f"{op} {ms:.1f}" for op, ms in sorted(total.items(), key=lambda kv: -kv[1]))


def _round_robin(a, b, feed, rounds: int) -> tuple[float, float]:
    """Medians (ms) of ``a`` and ``b`` run alternately, so machine load affects both alike."""
    a.run(None, feed), b.run(None, feed)
    ta, tb = [], []
    for _ in range(rounds):
        for sess, out in ((a, ta), (b, tb)):
            start = time.perf_counter()
            sess.run(None, feed)
            out.append((time.perf_counter() - start) * 1e3)
    return float(np.median(ta)), float(np.median(tb))


if __name__ == "__main__":
    sys.exit(main())
