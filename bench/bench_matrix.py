"""The matrix: every zoo net built for every target, at its published size and its smallest size.

Each cell runs ``deploycc build`` as a user would, in a subprocess with a timeout, so an exit 4 or
a crash is one cell, not the end of the run. The goal: every cell 0 (built and verified here) or 3
(built; the named step runs on the device). Published SqueezeNAS weights are used where
``shared/data/squeezenas/<net>.pth`` exists (mac_small, lat_small), deterministic weights else.

    python bench/bench_matrix.py [--nets mac_small,fbnet_a] [--targets cpu,xavier-int8]
        [--sizes smallest,published] [--timeout 600] [--jobs 1] [--json FILE]

The table: net, target, size, exit code, seconds, numerics, offline checks, verdict. Verification
runs in the build itself for every host target (and on a proxy for device-only ones); the arm64
target's artifact runs on an arm64 device: the emulated one (``deploycc device emulate-arm64``)
runs a zoo net at these sizes in minutes per cell under QEMU, so the matrix does not use it and
its cells say so (exit 3 names the device step).

``--jobs N`` runs N cells at a time (each its own subprocess and output folder). A build spends much
of its time in single-threaded Python and ONNX Runtime calls, so two jobs on two cores nearly halve
the run; each cell's seconds then include the other's load, which is why the default is one.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "data" / "squeezenas"
NETS = ["mac_small", "lat_small", "mac_large", "lat_large", "mac_xlarge", "lat_xlarge", "fbnet_a", "squeezenet1_1"]
SIZES = ("smallest", "published")
VERDICTS = {0: "verified here", 1: "a gate failed", 2: "bad input", 3: "built; unverified here", 4: "internal error"}
NOT_EMULATED = {"arm64-cpu": "not run on the emulated arm64 device (QEMU: minutes per zoo net)"}


def zoo_arch(net: str) -> dict:
    return json.loads((REPO / "models" / "zoo" / f"{net}.json").read_text())


def published_shape(net: str) -> list[int]:
    return list(zoo_arch(net)["input_shape"])


def smallest_shape(net: str) -> list[int]:
    """The smallest square H = W the architecture's own validation accepts (models.arch)."""
    from deploycc.core.errors import UserError
    from deploycc.models.arch import parse_arch

    d = zoo_arch(net)
    for side in range(16, 4097, 16):
        try:
            parse_arch({**d, "input_shape": [1, 3, side, side]}, f"{net}.json")
            return [1, 3, side, side]
        except UserError:
            continue
    raise SystemExit(f"{net}: no square input up to 4096 is accepted")


def shape_of(net: str, size: str) -> list[int]:
    return smallest_shape(net) if size == "smallest" else published_shape(net)


def build_args(net: str, target: str, shape: list[int], out: Path) -> list[str]:
    """The ``deploycc build`` arguments of one cell (with the published weights where present)."""
    args = ["build", net, "-t", target, "--input-shape", "x".join(map(str, shape)), "-o", str(out), "--json"]
    weights = WEIGHTS / f"{net}.pth"
    return args + (["--weights", str(weights)] if weights.is_file() else [])


def run_cell(net: str, target: str, size: str, timeout: float, workdir: Path) -> dict:
    shape = shape_of(net, size)
    out = workdir / f"{net}.{target}.{size}"
    cmd = [sys.executable, "-c", "from deploycc.cli.main import entry; entry()", *build_args(net, target, shape, out)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired:
        code, stdout, stderr = None, "", f"timed out after {timeout:g} s"
    cell = {"net": net, "target": target, "size": "x".join(map(str, shape[2:])), "exit": code}
    cell["seconds"] = round(time.perf_counter() - start, 1)
    cell.update(summarize(code, stdout, stderr, target))
    shutil.rmtree(out, ignore_errors=True)  # full-size artifacts add up
    return cell


def summarize(code: int | None, stdout: str, stderr: str, target: str) -> dict:
    """numerics, offline checks and the verdict of one cell from its ``--json`` result and stderr."""
    try:
        result = json.loads(stdout) if stdout.strip().startswith("{") else {}
    except json.JSONDecodeError:
        result = {}
    v = result.get("verification") or {}
    offline = result.get("trt_offline_checks") or {}
    checks = {k: c.get("status") for k, c in offline.items() if isinstance(c, dict)}
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    if code is None:
        verdict = last
    elif code == 3:
        step = _remaining(result) or last
        verdict = (
            f"{VERDICTS[3]}: {NOT_EMULATED[target]}: {step}" if target in NOT_EMULATED else f"{VERDICTS[3]}: {step}"
        )
    elif code == 0:
        verdict = VERDICTS[0] if not result.get("remaining") else f"verified on a proxy: {_remaining(result)}"
    else:
        label = VERDICTS.get(code, f"crashed (exit {code})")
        reason = (result.get("failure") or {}).get("reason") or last.removeprefix("error: ")
        verdict = reason if reason.startswith(label) else f"{label}: {reason}"
    return {
        "numerics": v.get("status", "—"),
        "offline_checks": ", ".join(f"{k} {s}" for k, s in checks.items()) or "—",
        "verdict": verdict,
    }


def _remaining(result: dict) -> str:
    steps = result.get("remaining") or []
    return steps[0].get("what", "") if steps else ""


def run_cells(plan: list[tuple[str, str, str]], timeout: float, jobs: int) -> list[dict]:
    """Every (net, target, size) of ``plan``, ``jobs`` at a time; each cell printed as it ends, the
    list returned in plan order."""
    done: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="deploycc-matrix-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(run_cell, net, target, size, timeout, Path(tmp)): i
                for i, (net, target, size) in enumerate(plan)
            }
            for future in concurrent.futures.as_completed(futures):
                done[futures[future]] = future.result()
                print(json.dumps(done[futures[future]]), flush=True)
    return [done[i] for i in range(len(plan))]


def all_targets() -> list[str]:
    from deploycc.targets import list_targets

    return [t.name for t in list_targets()]


def print_table(cells: list[dict]) -> None:
    keys = ["net", "target", "size", "exit", "seconds", "numerics", "offline_checks", "verdict"]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for c in cells:
        print("| " + " | ".join(str(c.get(k, "")).replace("|", "/") for k in keys) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default=",".join(NETS))
    parser.add_argument("--targets", default=None, help="comma-separated (default: every target)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="smallest, published, or both")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=1, help="cells built at a time (default 1)")
    parser.add_argument("--json", default=None, help="also write the cells to this file")
    args = parser.parse_args(argv)
    nets, sizes = args.nets.split(","), args.sizes.split(",")
    targets = args.targets.split(",") if args.targets else all_targets()
    for name, values, known in (("--nets", nets, NETS), ("--sizes", sizes, SIZES), ("--targets", targets, None)):
        unknown = [v for v in values if v not in (known or all_targets())]
        if unknown:
            parser.error(f"{name}: unknown {', '.join(unknown)} (known: {', '.join(known or all_targets())})")
    if args.jobs < 1:
        parser.error(f"--jobs: {args.jobs} is not a positive number of cells")
    plan = [(net, target, size) for net in nets for size in sizes for target in targets]
    cells = run_cells(plan, args.timeout, args.jobs)
    print_table(cells)
    if args.json:
        Path(args.json).write_text(json.dumps(cells, indent=2))
    return 0 if all(c["exit"] in (0, 3) for c in cells) else 1


if __name__ == "__main__":
    raise SystemExit(main())
