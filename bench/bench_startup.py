"""Start-up time of the light commands: wall seconds from process start to exit.

    python bench/bench_startup.py [--repeats 5]

Runs ``deploycc --help``, ``targets``, ``passes`` and ``inspect`` on the bundled model, each in a
fresh interpreter from the repository root (this checkout's sources), ``--repeats`` times, and
prints the minimum and median wall seconds (the minimum is the figure least disturbed by other
work on a shared machine), and the cumulative import time of ``deploycc.cli.main`` from
``python -X importtime``. The goal (issue 21): each at most 0.5 s on the project's 2-core machines.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-c", "from deploycc.cli.main import entry; entry()")
COMMANDS = {
    "--help": ["--help"],
    "targets": ["targets"],
    "passes": ["passes"],
    "inspect": ["inspect", "models/zoo/trained/street_ref.onnx"],
}


def wall_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([*CLI, *args], cwd=REPO, capture_output=True, check=True)
    return time.perf_counter() - start


def import_seconds() -> float:
    """Cumulative import time of deploycc.cli.main (microseconds in importtime's output)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import deploycc.cli.main"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return int(re.search(r"\|\s+(\d+) \| deploycc\.cli\.main$", err, flags=re.M).group(1)) / 1e6


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"import deploycc.cli.main: {min(import_seconds() for _ in range(args.repeats)):.3f} s (-X importtime, min)")
    for name, command in COMMANDS.items():
        times = [wall_seconds(command) for _ in range(args.repeats)]
        print(f"deploycc {name}: min {min(times):.3f} s, median {statistics.median(times):.3f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
