"""Benchmark of the graph passes on every zoo net, with verification on.

    nice -n 10 .venv/bin/python bench/bench_passes.py [--nets mac_small,fbnet_a] [--out FILE.json]
                                                     [--no-latency] [--tiling]

Per net (at its own input size): nodes before/after each pass (fold-bn, rewrite-dilated under the
Xavier DLA rules, fuse), pass and verification time, conv MACs before/after, the DLA legality
outcome, estimated DRAM bytes before/after fusion for the ``cpu`` and the Xavier memory figures;
then latency before/after passes, measured in the same run: ``cpu-ort`` (ONNX Runtime, all graph
optimizations, 2 threads; before = no passes, after = its target passes) and ``cpu`` (TVM, untuned,
2 threads; before = no passes, after = fold-bn + fuse with each group compiled as one function,
and with ``--tiling`` also tiled at the planned size). Untuned TVM takes seconds per run at
1024x2048, so TVM latency is taken at a smaller input where the head allows it (``TVM_SHAPES``)
and with fewer repeats; the input size is printed with every figure. The configurations of one
net are timed interleaved (one run of each per round), so load from other processes on a shared
machine falls on all of them alike; median and minimum are both printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from deploycc.core.macs import conv_macs
from deploycc.models import zoo_names
from deploycc.passes import PASSES, PassContext, run_passes
from deploycc.pipeline.pipeline import simplify
from deploycc.pipeline.sources import load_source
from deploycc.targets import TARGET_DIR, load_target
from deploycc.verify.measure import machine_facts, pin_threads, summarize

REPO = Path(__file__).resolve().parents[1]
DLA_TARGET = (
    "xavier-dla-int8"
    if (TARGET_DIR / "xavier-dla-int8.toml").is_file()
    else str(REPO / "tests" / "passes" / "xavier-dla-test.toml")
)
# LR-ASPP heads need H, W >= 784 (their 49x49 pool); the ASPP and classification nets do not.
TVM_SHAPES = {
    "mac_small": (1, 3, 784, 1568),
    "lat_small": (1, 3, 784, 1568),
    "mac_large": (1, 3, 784, 1568),
    "lat_large": (1, 3, 784, 1568),
    "mac_xlarge": (1, 3, 512, 1024),
    "lat_xlarge": (1, 3, 512, 1024),
}
THREADS = 2
ORT_ROUNDS, TVM_ROUNDS = 15, 3


def interleaved(runs: dict, rounds: int) -> dict:
    """Latency per configuration: one warm-up each, then ``rounds`` rounds of one run of each."""
    for fn in runs.values():
        fn()
    samples = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            samples[k].append((time.perf_counter() - t0) * 1e3)
    return {k: summarize(v, True, THREADS).to_dict() for k, v in samples.items()}


def export(name: str, shape=None) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as scratch:
        model, source = load_source(name, Path(scratch), shape)
        return simplify(model, source)


def pass_figures(name: str) -> dict:
    model = export(name)
    cpu, dla = load_target("cpu"), load_target(DLA_TARGET)
    passes = [
        PASSES["fold-bn"](PassContext(cpu)),
        PASSES["rewrite-dilated"](PassContext(dla)),
        PASSES["fuse"](PassContext(cpu)),
    ]
    after, records = run_passes(model, passes, verify=True)
    folded, _ = run_passes(model, [PASSES["fold-bn"]()], verify=False)
    _, [xavier] = run_passes(folded, [PASSES["fuse"](PassContext(dla))], verify=False)
    legality = records[1].log.stats["legality"]
    return {
        "input_shape": _shape(model),
        "passes": [
            {
                "name": r.name,
                "nodes_before": r.nodes_before,
                "nodes_after": r.nodes_after,
                "rewrites": len(r.log.rewrites),
                "refusals": len(r.log.refusals),
                "seconds": r.seconds,
                "verify_seconds": r.verify_seconds,
                "max_abs_error": max((s.max_abs for s in r.verification), default=None),
            }
            for r in records
        ],
        "conv_macs_before": conv_macs(model),
        "conv_macs_after": conv_macs(after),
        "dla": {k: legality[k] for k in ("dilated_convs", "rewritten", "still_illegal", "verdict")},
        "fusion": {"cpu": _fusion(records[2].log.stats), "xavier": _fusion(xavier.log.stats)},
    }


def _fusion(stats: dict) -> dict:
    return {
        "groups": len(stats["groups"]),
        "onchip_memory": stats["onchip_memory"],
        "dram_unfused": stats["dram_bytes_unfused"],
        "dram_fused": stats["dram_bytes_fused"],
        "recompute_macs": stats["recompute_macs"],
    }


def ort_latency(name: str) -> dict:
    import onnxruntime as ort

    model = export(name)
    target = load_target("cpu-ort")
    after, _ = run_passes(model, [PASSES[p](PassContext(target)) for p in target.passes], verify=False)
    feeds = _feeds(model)
    runs = {}
    for label, m in (("before", model), ("after", after)):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads, so.inter_op_num_threads = THREADS, 1
        session = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        runs[label] = (lambda s: lambda: s.run(None, feeds))(session)
    return {"input_shape": _shape(model), **interleaved(runs, ORT_ROUNDS)}


def tvm_latency(name: str, tiling: bool) -> dict:
    import tvm
    from tvm import relax

    from deploycc.targets.tvm import fusion as tvm_fusion
    from deploycc.targets.tvm.backend import resolve_target

    model = export(name, TVM_SHAPES.get(name))
    target = load_target("cpu")
    folded, _ = run_passes(model, [PASSES["fold-bn"](PassContext(target))], verify=False)
    fused, _ = run_passes(folded, [PASSES["fuse"](PassContext(target))], verify=False)
    tvm_target, _ = resolve_target(target)
    pin_threads("tvm", THREADS)
    feeds = _feeds(model)
    out = {"input_shape": _shape(model)}
    configs = [("before", model, False), ("fold-bn", folded, False), ("after", fused, False)]
    if tiling:
        configs.append(("after+tiling", fused, True))
    reference, runs, facts = None, {}, {}
    args = [tvm.runtime.tensor(a) for a in feeds.values()]
    for label, m, tile in configs:
        start = time.perf_counter()
        mod, fusion = tvm_fusion.import_onnx(m, tiling=tile)
        ex = tvm_fusion.build(mod, tvm_target, fusion)
        compile_s = time.perf_counter() - start
        vm = relax.VirtualMachine(ex, tvm.cpu())
        got = vm["main"](*args).numpy()
        reference = got if reference is None else reference
        runs[label] = (lambda v: lambda: v["main"](*args))(vm)
        facts[label] = {
            "compile_seconds": compile_s,
            "fused_groups": fusion.summary()["groups_fused"],
            "max_abs_diff_vs_before": float(np.max(np.abs(got - reference))),
        }
    lat = interleaved(runs, TVM_ROUNDS)
    return out | {k: lat[k] | facts[k] for k in runs}


def _feeds(model: onnx.ModelProto) -> dict:
    from deploycc.core.numerics import random_feeds, value_specs

    inits = {t.name for t in model.graph.initializer}
    return random_feeds(value_specs([i for i in model.graph.input if i.name not in inits]), 0)


def _shape(model: onnx.ModelProto) -> str:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return "x".join(str(d.dim_value) for d in dims)


def report(name: str, r: dict) -> None:
    p = r["passes"]
    print(f"\n== {name} ({p and r['input_shape']})")
    for x in p:
        err = f"{x['max_abs_error']:.2e}" if x["max_abs_error"] is not None else "-"
        print(
            f"  {x['name']:<16} nodes {x['nodes_before']:>4} -> {x['nodes_after']:<4} rewrites {x['rewrites']:>3} "
            f"refusals {x['refusals']:>2}  pass {x['seconds'] * 1e3:8.1f} ms  verify {x['verify_seconds']:6.2f} s  "
            f"max abs err {err}"
        )
    print(
        f"  conv MACs {r['conv_macs_before'] / 1e9:.3f} G -> {r['conv_macs_after'] / 1e9:.3f} G "
        f"(x{r['conv_macs_after'] / r['conv_macs_before']:.4f})"
    )
    print(
        f"  DLA ({DLA_TARGET}): {r['dla']['dilated_convs']} dilated convs, "
        f"rewritten {r['dla']['rewritten'] or 'none'}; "
        f"{r['dla']['verdict']}"
    )
    for unit, f in r["fusion"].items():
        print(
            f"  fuse [{unit}, on-chip {f['onchip_memory'] / 2**20:.2f} MiB]: {f['groups']} groups, est. DRAM "
            f"{f['dram_unfused'] / 1e6:.1f} MB -> {f['dram_fused'] / 1e6:.1f} MB "
            f"(x{f['dram_fused'] / f['dram_unfused']:.3f}), recompute {f['recompute_macs'] / 1e6:.1f} M MACs"
        )
    for backend in ("cpu-ort", "cpu"):
        lat = r.get(backend)
        if not lat:
            continue
        base, low = lat["before"]["median_ms"], lat["before"]["min_ms"]
        parts = [
            f"{k} {v['median_ms']:.1f} ms (x{v['median_ms'] / base:.3f}; min {v['min_ms']:.1f}, "
            f"x{v['min_ms'] / low:.3f})"
            for k, v in lat.items()
            if isinstance(v, dict)
        ]
        print(
            f"  latency {backend} @ {lat['input_shape']}, {lat['before']['runs']} interleaved runs each, "
            f"median (min): " + "; ".join(parts)
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default=",".join(zoo_names()))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--tiling", action="store_true", help="also time fused groups tiled at the planned size")
    args = parser.parse_args()
    print(f"bench_passes: {json.dumps(machine_facts())}")
    results = {}
    for name in args.nets.split(","):
        r = pass_figures(name)
        if not args.no_latency:
            r["cpu-ort"] = ort_latency(name)
            r["cpu"] = tvm_latency(name, args.tiling)
        results[name] = r
        report(name, r)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
