"""Long fuzz of the graph passes: random conv chains (the property tests' generator,
tests/passes/conv_chains.py) through fold-bn, rewrite-dilated (every method, with and without
--force, with accelerator rules) and fuse, each run under the pass manager with verification on.

    nice -n 10 .venv/bin/python bench/fuzz_passes.py --examples 10000 [--seed 1]

Prints the examples run, the rewrites and refusals per pass, how close each pass came to the
tolerance (largest max-abs-error / allowed), which oracle was used, and the time taken. Exits 1
with the shrunk failing chain if any pass changed the numerics or broke an invariant.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "passes"))

import conv_chains as cc  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from deploycc.passes import FoldBatchNorm, FuseGroups, PassContext, RewriteDilatedConv, run_passes  # noqa: E402  # noqa: E402
from deploycc.targets import Target  # noqa: E402

METHODS = ["auto", "keep", "degenerate", "zero-insert", "space-to-batch"]
DLA = {
    "accelerator": "DLA",
    "fallback": "GPU",
    "native_dilated_conv": True,
    "conv": {"kernel": [1, 5], "dilation": [1, 2], "padding": [0, 3], "padding_less_than_kernel": True},
}


class Tally:
    def __init__(self):
        self.examples = 0
        self.rewrites, self.refusals, self.runs = Counter(), Counter(), Counter()
        self.worst: dict[str, float] = {}
        self.oracles = Counter()
        self.methods = Counter()

    def add(self, records) -> None:
        for r in records:
            self.runs[r.name] += 1
            self.rewrites[r.name] += len(r.log.rewrites)
            self.refusals[r.name] += len(r.log.refusals)
            if r.oracle:
                self.oracles[r.oracle.split(" (")[0]] += 1
            for s in r.verification:
                ratio = s.max_abs / s.allowed_abs if s.allowed_abs > 0 else 0.0
                self.worst[r.name] = max(self.worst.get(r.name, 0.0), ratio)
            for o in r.log.stats.get("convs", []):
                if o.get("action") == "rewritten":
                    self.methods[o["method"]] += 1


TALLY = Tally()


def check(chain, method: str, force: bool, memory: int) -> None:
    model = cc.build(chain)
    chip = Target(
        "chip", "tvm", "fp32", hardware={"peak_ops": {"fp32": 195e9}, "dram_bandwidth": 25e9, "onchip_memory": memory}
    )
    dla = Target(
        "dla",
        "ort",
        "fp32",
        hardware={"peak_ops": {"fp32": 1e12}, "dram_bandwidth": 137e9, "onchip_memory": memory},
        legality=DLA,
    )
    opts = {"rewrite-dilated.method": method}
    _, recs = run_passes(
        model,
        [
            FoldBatchNorm(),
            RewriteDilatedConv(PassContext(force=force, options=opts)),
            FuseGroups(PassContext(target=chip)),
        ],
    )
    TALLY.add(recs)
    ctx = PassContext(target=dla)
    _, recs = run_passes(model, [RewriteDilatedConv(ctx), FoldBatchNorm(ctx), FuseGroups(ctx)])
    TALLY.add(recs)
    TALLY.examples += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    test = settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )(
        given(
            cc.chains(max_layers=4, max_size=24),
            st.sampled_from(METHODS),
            st.booleans(),
            st.sampled_from([4096, 65536, 1 << 20]),
        )(check)
    )
    test = seed(args.seed)(test)
    start = time.perf_counter()
    failed = None
    try:
        test()
    except Exception as exc:  # hypothesis re-raises the shrunk failure
        failed = exc
    seconds = time.perf_counter() - start
    print(
        f"fuzz_passes: {TALLY.examples} chains, {sum(TALLY.runs.values())} pass runs in {seconds:.0f} s "
        f"({1e3 * seconds / max(TALLY.examples, 1):.1f} ms per chain), seed {args.seed}"
    )
    for name in sorted(TALLY.runs):
        print(
            f"  {name:<16} runs {TALLY.runs[name]:>6}  rewrites {TALLY.rewrites[name]:>6}  "
            f"refusals {TALLY.refusals[name]:>6}  worst error / allowed {TALLY.worst.get(name, 0.0):.3g}"
        )
    print(f"  rewrite-dilated methods applied: {dict(TALLY.methods)}")
    print(f"  oracles used: {dict(TALLY.oracles)}")
    if failed is not None:
        print(f"FAILED: {type(failed).__name__}: {failed}")
        return 1
    print("no pass changed the numerics or broke an invariant")
    return 0


if __name__ == "__main__":
    sys.exit(main())
