"""LUT benchmark: build a LUT on a target, validate it on sampled architectures, print figures.

    python bench/bench_lut.py --target cpu-ort --n 64 --train 24 --repeat 8   # SqueezeNAS small, 1x3x1024x2048
    python bench/bench_lut.py --target cpu --space fbnet --input-shape 1x3x64x64 --n 20

Builds the isolated LUT and the in-context LUT (``--mode``), validates both on the same sampled
architectures, and prints every predictor side by side on the held-out ones: raw, corrected and
affine for each LUT, the MAC-count baseline (latency ~ a * GMACs + b, fitted on the same training
architectures) and, with ``--repeat K``, the noise floor (the first K architectures built and
timed a second time), with the in-context goals (MAPE <= 3 %, Kendall tau >= 0.90, >= 99 % within
+-10 %, MAPE <= a third of the MAC baseline's). Writes the LUTs, reports and figures.json into
--out. Entries and architectures are cached, so a run stopped (``--stop-after``) or interrupted
resumes. Run it under ``flock /work/.bench.lock nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cpu-ort")
    ap.add_argument("--space", default="squeezenas")
    ap.add_argument("--backbone", default=None)
    ap.add_argument("--input-shape", default=None, help="1x3xHxW (default: the space's own)")
    ap.add_argument("--units", default=None, help="comma-separated candidate units (default: all)")
    ap.add_argument("--mode", default="both", choices=["isolated", "in-context", "both"])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--statistic", default="median")
    ap.add_argument("--clock", default="cpu", help="cpu (process CPU time, 1 thread) or wall")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--out", default="build/bench-lut")
    ap.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="measure the first K architectures a second time: the noise floor of the ground truth",
    )
    ap.add_argument(
        "--stop-after",
        default=None,
        choices=["isolated", "in-context", "archs"],
        help="stop after this step (resume later from the cache: runs of < 15 min under a lock)",
    )
    args = ap.parse_args(argv)

    from deploycc.core.shapes import parse_shape
    from deploycc.lut.context import build_context_lut
    from deploycc.lut.profile import ProfileSettings, build_lut, protocol_for
    from deploycc.lut.report import write_report
    from deploycc.lut.validate import ValidationPlan, validate
    from deploycc.verify.measure import load_average

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {load_average()}")
    shape = parse_shape(args.input_shape) if args.input_shape else None
    settings = ProfileSettings(
        target=args.target, threads=args.threads, protocol=protocol_for(args.statistic, clock=args.clock)
    )
    units = args.units.split(",") if args.units else None
    modes = ["isolated", "in-context"] if args.mode == "both" else [args.mode]
    luts = {}
    for mode in modes:
        counts = {"new": 0, "cached": 0}

        def on_entry(step, counts=counts, mode=mode):
            counts["cached" if step.event == "cached" else "new"] += 1
            print(f"\r  {mode} {step.done}/{step.total}", end="", file=sys.stderr, flush=True)

        t0 = time.perf_counter()
        build = build_lut if mode == "isolated" else build_context_lut
        luts[mode] = lut = build(
            args.space,
            out / f"lut.{mode}.json",
            settings,
            shape,
            args.backbone,
            args.statistic,
            args.cache,
            on_entry,
            units,
        )
        print(
            f"\n{mode} LUT: {len(lut.entries)} entries ({counts['new']} measured now, {counts['cached']} cached) "
            f"in {time.perf_counter() - t0:.0f} s; target {lut.target['name']}, {lut.threads} thread(s), "
            f"{args.statistic}, clock {args.clock}, input {'x'.join(map(str, lut.input_shape))}, load {load_average()}"
        )
        if args.stop_after == mode:
            return 0

    def on_arch(step):
        print(f"\r  architectures {step.done}/{step.total}", end="", file=sys.stderr, flush=True)

    results = {}
    for mode, lut in luts.items():
        t0 = time.perf_counter()
        results[mode] = validate(
            lut, ValidationPlan(n=args.n, seed=args.seed, train=args.train), args.cache, progress=on_arch
        )
        print(
            f"\nvalidation ({mode}): {results[mode]['n']} architectures in {time.perf_counter() - t0:.0f} s "
            f"({results[mode]['n_train']} train / {results[mode]['n_test']} held-out), load {load_average()}"
        )
        files = write_report(results[mode], out / mode, "md")
        if args.stop_after == "archs":
            return 0
    first = next(iter(results.values()))
    if args.repeat:
        first["repeatability"] = repeatability(next(iter(luts.values())), first, args.repeat)
    print_figures(results, first.get("repeatability"))
    (out / "figures.json").write_text(
        json.dumps(
            {
                m: {k: r[k] for k in ("held_out", "raw_all", "n", "n_train", "n_test", "load_average", "machine")}
                for m, r in results.items()
            }
            | {"repeatability": first.get("repeatability")},
            indent=1,
            default=str,
        )
    )
    print(f"reports under {out}/<mode>/ (last: {files['report']}), figures {out / 'figures.json'}")
    return 0


def repeatability(lut, result: dict, k: int) -> dict:
    """Build and time the first ``k`` architectures again (fresh cache): measurement against itself."""
    import tempfile

    from deploycc.lut import stats
    from deploycc.lut.measure_arch import arch_protocol, measure_archs
    from deploycc.lut.predict import Predictor
    from deploycc.lut.timer import LocalTimer

    rows = result["architectures"][:k]
    pred = Predictor(lut)
    with tempfile.TemporaryDirectory(prefix="deploycc-repeat-") as fresh:
        archs = [pred.arch_of(r["genotype"]) for r in rows]
        again = measure_archs(LocalTimer(), archs, lut, arch_protocol(lut), fresh).records
    second = [again[str(i)]["latency"][f"{lut.statistic}_ms"] for i in range(len(rows))]
    return stats.summary(second, [r["measured_ms"] for r in rows]) | {"second_ms": second, "n": len(rows)}


KEYS = [
    ("MAPE %", "mape_pct"),
    ("bias %", "bias_pct"),
    ("within 5 %", "within_5_pct"),
    ("within 10 %", "within_10_pct"),
    ("max |err| %", "max_abs_error_pct"),
    ("RMSE ms", "rmse_ms"),
    ("Kendall tau", "kendall_tau"),
    ("Spearman rho", "spearman_rho"),
]


def print_figures(results: dict, floor: dict | None) -> None:
    """Every predictor side by side on the held-out architectures, with the MAC baseline and the
    noise floor (the ground truth measured twice)."""
    cols = []
    for mode, r in results.items():
        held = r["held_out"]
        cols += [
            (f"{mode} raw", held["raw"]),
            (f"{mode} corrected", held["corrected"]),
            (f"{mode} affine", held["affine"]),
        ]
    first = next(iter(results.values()))
    cols.append(("MACs a*G+b", first["held_out"]["macs"]))
    if floor:
        cols.append((f"noise floor ({floor['n']})", floor))
    print(f"held-out architectures: {first['n_test']} (trained on {first['n_train']})")
    print(f"{'':14}" + "".join(f"{name:>22}" for name, _ in cols))
    for label, key in KEYS:
        print(f"{label:14}" + "".join(f"{_fmt(figs.get(key)):>22}" for _, figs in cols))
    macs = first["held_out"]["macs"]["mape_pct"]
    if "in-context" in results:
        ctx = results["in-context"]["held_out"]["raw"]
        print(
            "goals (in-context raw, held-out): MAPE <= 3 %: {} ({:.2f}); Kendall tau >= 0.90: {} ({}); "
            ">= 99 % within 10 %: {} ({:.1f}); MAPE <= MACs/3 ({:.2f}): {}".format(
                _ok(ctx["mape_pct"] <= 3),
                ctx["mape_pct"],
                _ok((ctx["kendall_tau"] or 0) >= 0.90),
                _fmt(ctx["kendall_tau"]),
                _ok(ctx["within_10_pct"] >= 99),
                ctx["within_10_pct"],
                macs / 3,
                _ok(ctx["mape_pct"] <= macs / 3),
            )
        )


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _ok(flag: bool) -> str:
    return "MET" if flag else "NOT MET"


if __name__ == "__main__":
    sys.exit(main())
