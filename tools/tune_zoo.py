"""Tune the zoo's SqueezeNAS nets for the `cpu` target at their published input, in one command.

    python tools/tune_zoo.py [--nets mac_small,lat_small] [--trials-per-task 16] [--ship]
    make tune-zoo                       # all six nets, then --ship

Each net is built with `deploycc build NET --target cpu --tune-trials ...` into this CPU's tuning
database (`~/.cache/deploycc/tvm-tuning/<target key>`, or `--tuning-db`), so kernels the nets
share are tuned once. Tuning searches the CPU rules' design space (`targets/tvm/tuning.py`), so
every task ends with a valid schedule; with 16 trials per task every candidate, the default
among them, is measured. `--ship` then writes the fastest
record of each workload to `targets/tvm/shipped_tuning/<target key>/`, which builds on a machine with the same
resolved TVM target (CPU model and core count in the target file) apply when their own database
is empty; on any other CPU the key differs, nothing shipped applies, and this command rebuilds it.
Prints per net the tuning seconds, tasks tuned and where each kernel's schedule came from.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

SIX = ["mac_small", "lat_small", "mac_large", "lat_large", "mac_xlarge", "lat_xlarge"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default=",".join(SIX))
    ap.add_argument(
        "--trials-per-task",
        type=int,
        default=None,
        help="default: every candidate of every task (targets/tvm_tuning.TRIALS_PER_TASK)",
    )
    ap.add_argument("--max-trials", type=int, default=2000, help="cap on all trials of one net")
    ap.add_argument("--tuning-db", default=None, help="database folder (default: this CPU's cache folder)")
    ap.add_argument("--ship", action="store_true", help="write the best records to targets/tvm/shipped_tuning/<key>/")
    args = ap.parse_args(argv)

    from deploycc.core.cache import cache_home
    from deploycc.models import zoo_names
    from deploycc.pipeline.pipeline import BuildOptions, build
    from deploycc.targets import load_target
    from deploycc.targets.tvm import tuning as tvm_tuning
    from deploycc.targets.tvm.backend import resolve_target, target_key

    nets = [n for n in args.nets.split(",") if n]
    unknown = [n for n in nets if n not in zoo_names()]
    if unknown:
        print(f"error: --nets: {', '.join(unknown)} not in the zoo ({', '.join(zoo_names())})", file=sys.stderr)
        return 2
    key = target_key(resolve_target(load_target("cpu"))[0])
    db = Path(args.tuning_db) if args.tuning_db else cache_home() / "tvm-tuning" / key
    print(f"tuning database {db} (target key {key})")
    for net in nets:
        with tempfile.TemporaryDirectory(prefix="deploycc-tune-") as scratch:
            start = time.perf_counter()
            result = build(
                net,
                "cpu",
                Path(scratch) / net,
                BuildOptions(tune_trials=args.max_trials, trials_per_task=args.trials_per_task, tuning_db=str(db)),
            )
            info = result.manifest["backend_info"]
            print(
                json.dumps(
                    {
                        "net": net,
                        "seconds": round(time.perf_counter() - start, 1),
                        "tuning_space": info.get("tuning_space"),
                        "schedules": info.get("schedules"),
                        "ok": result.ok,
                    }
                ),
                flush=True,
            )
    if args.ship:
        kept, read = tvm_tuning.best_only(db, tvm_tuning.SHIPPED / key)
        print(f"shipped {kept} workloads (best of {read} records) to {tvm_tuning.SHIPPED / key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
