"""Noise floor: the same architecture and the same LUT entry measured many times, interleaved.

    python bench/bench_noise.py --target cpu-ort --repeats 10             # 1x3x1024x2048
    python bench/bench_noise.py --target cpu-ort --space fbnet --input-shape 1x3x128x128 --repeats 10

Builds one sampled architecture (SqueezeNAS small by default) and one LUT entry (the unit at a middle layer) with
the pipeline, then takes ``--repeats`` complete measurements of each, in turns, each one with
the protocol a LUT build or a validation uses (interleaved rounds and the outlier rule; the
whole-architecture protocol for the network, the entry protocol for the entry). Prints, per
thing, the median measurement and how far single measurements fall from it: the scaled MAD and
the largest deviation (%), and the share within +-1, 2 and 5 %. No predictor can be judged more
finely than this. Records the load (runnable tasks, load average, calibration spin) before and
after. Run it under ``flock /work/.bench.lock`` with ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cpu-ort")
    ap.add_argument("--space", default="squeezenas")
    ap.add_argument("--input-shape", default="1x3x1024x2048")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--statistic", default="median")
    ap.add_argument("--clock", default="cpu")
    ap.add_argument("--out", default="build/bench-noise.json")
    args = ap.parse_args(argv)

    from deploycc.core.shapes import parse_shape
    from deploycc.lut.entries import export_entry, template_arch
    from deploycc.lut.measure_arch import ARCH_PROTOCOL
    from deploycc.lut.profile import LUT_PROTOCOL, plan, protocol_for
    from deploycc.models import parse_arch, sample_genotype, save_arch
    from deploycc.pipeline.pipeline import BuildOptions, build
    from deploycc.verify.conditions import LoadCheck, pinned, timing_cpus
    from deploycc.verify.measure import open_timed
    from deploycc.verify.repeat import time_interleaved

    template = template_arch(args.space, parse_shape(args.input_shape))
    arch = parse_arch(
        {**template.to_dict(), "genotype": sample_genotype(args.space, random.Random(7), template.backbone or "small")}
    )
    _, _, layers = plan(arch)
    mid = len(layers) // 2
    spec = next(s for c, s in layers[mid].items() if c != "skip")
    check, load = LoadCheck(), {}
    with tempfile.TemporaryDirectory(prefix="deploycc-noise-") as tmp:
        tmp = Path(tmp)
        opts = BuildOptions(verify_passes=False, threads=1)
        build(str(save_arch(arch, tmp / "arch.json")), args.target, tmp / "arch", opts)
        (tmp / "entry").mkdir()
        build(str(export_entry(spec, arch, tmp / "entry" / "entry.onnx")), args.target, tmp / "entry-art", opts)
        runs = {
            "architecture": open_timed(tmp / "arch", 1)[1],
            f"entry {spec.key}": open_timed(tmp / "entry-art", 1)[1],
        }
        protocols = {
            "architecture": protocol_for(args.statistic, base=ARCH_PROTOCOL, clock=args.clock),
            f"entry {spec.key}": protocol_for(args.statistic, base=LUT_PROTOCOL, clock=args.clock),
        }
        values = {k: [] for k in runs}
        load["before"] = check.state(1)
        with pinned(timing_cpus(1)):
            for r in range(args.repeats):
                for name in list(runs) if r % 2 == 0 else list(runs)[::-1]:
                    lat = time_interleaved([runs[name]], protocols[name], 1)[0]
                    values[name].append(lat.stat(args.statistic))
                print(f"\r  repeat {r + 1}/{args.repeats}", end="", file=sys.stderr, flush=True)
        load["after"] = check.state(1)
    print()
    result = {
        "input_shape": args.input_shape,
        "target": args.target,
        "statistic": args.statistic,
        "clock": args.clock,
        "repeats": args.repeats,
        "load": load,
        "things": {},
    }
    for name, v in values.items():
        result["things"][name] = summary = floor(v)
        print(
            f"{name}: median {summary['median_ms']:.3f} ms; scaled MAD {summary['mad_pct']:.2f} %, "
            f"max deviation {summary['max_dev_pct']:.2f} %; within 1 % {summary['within_1_pct']:.0f} %, "
            f"2 % {summary['within_2_pct']:.0f} %, 5 % {summary['within_5_pct']:.0f} %"
        )
    for when in ("before", "after"):
        s = load[when]
        print(
            f"load {when}: average {s['load_average']}, runnable {s['runnable']}, spin ratio {s['spin_ratio']}, "
            f"{'LOADED: ' + '; '.join(s['reasons']) if s['loaded'] else 'quiet'}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


def floor(values) -> dict:
    """How far single measurements fall from their median, in %."""
    v = np.asarray(values, dtype=np.float64)
    med = float(np.median(v))
    dev = 100 * np.abs(v - med) / med
    return {
        "median_ms": med,
        "values_ms": v.tolist(),
        "mad_pct": float(1.4826 * np.median(dev)),
        "max_dev_pct": float(dev.max()),
        "within_1_pct": float(100 * np.mean(dev <= 1)),
        "within_2_pct": float(100 * np.mean(dev <= 2)),
        "within_5_pct": float(100 * np.mean(dev <= 5)),
    }


if __name__ == "__main__":
    sys.exit(main())
