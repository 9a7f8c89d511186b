"""Fleet benchmark: the same LUT built here, on one fleet device, and on every device (same run).

    python bench/bench_fleet.py                                   # loopback: tracker + 2 rpc_servers here
    python bench/bench_fleet.py --remote HOST:9190 --key xavier   # a real fleet

Builds the FBNet-space LUT of ``--units`` at ``--input-shape`` for ``--target`` three times with
empty caches: locally (the baseline: compile and time on this machine), through the fleet with
one device, and through the fleet with all free devices. Prints wall seconds, the ratio of the
all-devices run to the one-device run, and per-device statistics. This machine always compiles
(one build at a time); the devices only time. On a loopback fleet the "devices" share this
machine's cores with the compiler, so the ratio there bounds nothing about real hardware: run it
against real devices for the figure that matters. Run it with ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _loopback(n: int, logdir: Path):
    spec = importlib.util.spec_from_file_location("remote_conftest", REPO / "tests" / "remote" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fleet = module.LoopbackFleet(logdir)
    fleet.start_tracker()
    for _ in range(n):
        fleet.start_server("bench")
    fleet.wait_free("bench", n)
    return fleet


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--remote", help="tracker HOST:PORT (default: start a loopback fleet)")
    ap.add_argument("--key", default="bench")
    ap.add_argument("--servers", type=int, default=2, help="loopback servers to start")
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--input-shape", default="1x3x32x32")
    ap.add_argument("--units", default="k3_e1,k5_e6")
    ap.add_argument("--max-repeats", type=int, default=20)
    args = ap.parse_args(argv)

    from deploycc.core.shapes import parse_shape
    from deploycc.fleet.lut import FleetOptions, FleetTimer
    from deploycc.lut.profile import LUT_PROTOCOL, ProfileSettings, build_lut, protocol_for

    shape, units = parse_shape(args.input_shape), args.units.split(",")
    settings = ProfileSettings(
        target=args.target, threads=1, protocol=protocol_for("median", args.max_repeats, base=LUT_PROTOCOL)
    )
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    fleet = None if args.remote else _loopback(args.servers, work)
    remote = args.remote or fleet.address
    try:
        rows = []
        t0 = time.perf_counter()
        local = build_lut(
            "fbnet", work / "local.json", settings, shape, statistic="median", cache=work / "c0", units=units
        )
        rows.append(("here (baseline)", time.perf_counter() - t0, None))
        for label, devices, cache in (("fleet, 1 device", 1, "c1"), ("fleet, all devices", None, "c2")):
            t0 = time.perf_counter()
            lut = build_lut(
                "fbnet",
                work / f"{cache}.json",
                settings,
                shape,
                statistic="median",
                cache=work / cache,
                units=units,
                timer=FleetTimer(FleetOptions(remote, args.key, max_devices=devices)),
            )
            rows.append((label, time.perf_counter() - t0, lut.machine["fleet"]))
        timed = sum(1 for e in local.entries.values() if e.get("measured", True))
        print(
            f"LUT: fbnet {args.input_shape}, units {args.units}, target {args.target}, {timed} timed entries, "
            f"protocol max {args.max_repeats} runs; fleet {remote} key {args.key}"
        )
        for label, seconds, stats in rows:
            line = f"  {label:<20} {seconds:8.1f} s"
            if stats:
                per = ", ".join(
                    f"{d}: {s['jobs']} jobs {s['busy_seconds']:.1f} s busy" for d, s in stats["devices"].items()
                )
                line += f"   [{per}]"
            print(line)
        one, many = rows[1][1], rows[2][1]
        print(f"  all devices / one device: {many / one:.2f}x wall time; one device / here: {one / rows[0][1]:.2f}x")
    finally:
        if fleet is not None:
            fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
