"""The fuse pass's cost model against the machine: per fusion group of one zoo net, the DRAM bytes
and time the model predicts fusion saves, and the time it actually saves.

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/bench_fusion.py [--net mac_small]
        [--shape 1x3x1024x2048] [--target cpu] [--rounds 5] [--json FILE]

The net is exported at ``--shape``, simplified, and planned by ``fold-bn`` then ``fuse`` for the
target (its ``[hardware]`` figures and the pass defaults, or ``--alpha``). Each group is then cut
out as a model of its own and compiled twice by the target's backend, fused (one function, as a
build with the plan gives it) and unfused (the backend's per-op kernels), both timed in the same
interleaved rounds (``verify/fusion_gain.py``). Columns: the predicted DRAM saving (MB), the
predicted and the measured time saved (ms), their ratio (1.0: the model is right; negative:
fusion loses), the saving between the two minimums (the least disturbed runs, for a loaded
machine), whether the two compiled outputs agree within the target's tolerance, and why the
backend compiled the group unfused where it did (``fusion.split``: then both are the same code). The
load average is printed before and after: on a shared machine the times are not final figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from deploycc.core.shapes import parse_shape
from deploycc.passes import PASSES, PassContext, run_passes
from deploycc.pipeline.pipeline import simplify
from deploycc.pipeline.sources import load_source
from deploycc.targets import load_target
from deploycc.verify.fusion_gain import measure_groups
from deploycc.verify.measure import Protocol, load_average, machine_facts

COLUMNS = (
    "group",
    "ops",
    "tile",
    "dram_saved_mb",
    "predicted_saved_ms",
    "unfused_ms",
    "fused_ms",
    "measured_saved_ms",
    "measured_over_predicted",
    "saved_by_min_ms",
    "outputs_agree",
    "backend_split",
)


def planned(net: str, shape, target, alpha: float | None):
    """(the net after fold-bn and fuse, the fuse pass's plan)."""
    with tempfile.TemporaryDirectory() as scratch:
        model, source = load_source(net, Path(scratch), shape)
        model = simplify(model, source)
    options = {"fuse.alpha": alpha} if alpha is not None else {}
    passes = [PASSES["fold-bn"](PassContext(target)), PASSES["fuse"](PassContext(target, options=options))]
    after, records = run_passes(model, passes, verify=False)
    stats = records[-1].log.stats
    return after, {"groups": stats["groups"], "alpha": stats["alpha"], "budget": stats["budget"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="mac_small")
    parser.add_argument("--shape", default="1x3x1024x2048")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs-per-round", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=None, help="fuse.alpha (the pass default when absent)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    target = load_target(args.target)
    model, plan = planned(args.net, parse_shape(args.shape), target, args.alpha)
    head = {"net": args.net, "shape": args.shape, "target": target.name, "alpha": plan["alpha"]}
    print(json.dumps({**head, "groups": len(plan["groups"]), "machine": machine_facts()}), flush=True)
    protocol = Protocol(warmup=1, min_repeats=args.runs_per_round, max_repeats=999, rounds=args.rounds, reject_mad=3.0)
    rows = measure_groups(model, plan, target, protocol, args.threads)
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in COLUMNS) + " |")
    sums = ("predicted_saved_ms", "measured_saved_ms", "saved_by_min_ms")
    total = {k: round(sum(r[k] for r in rows), 3) for k in sums}
    print(json.dumps({**head, **total, "load_after": load_average()}))
    if args.json:
        Path(args.json).write_text(json.dumps({**head, "rows": rows, **total}, indent=2))


if __name__ == "__main__":
    main()
