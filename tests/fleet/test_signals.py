"""A long-running fleet command stops its children on SIGTERM and SIGINT (issue 25, "Processes").

``deploycc lut build --remote`` holds each device lease in a child process forked from a fork
server (``deploycc.fleet.worker``). The real command runs as a subprocess against the loopback
fleet; once it has leased a device, it is signalled, and every process it started must be gone
within a bound, and the devices free again on the tracker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BOUND_S = 60.0


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc: children of children too)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, bound: float, what: str) -> None:
    end = time.monotonic() + bound
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {bound:g} s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_lut_build_on_the_fleet_leaves_no_child_and_frees_its_devices(fleet, tmp_path, sig):
    from deploycc.fleet import Tracker

    args = ["lut", "build", "--space", "fbnet", "--input-shape", "1x3x32x32", "--units", "k3_e1,k3_e6,k5_e3"]
    args += ["-t", "cpu", "--remote", fleet.address, "--key", "cpu", "--max-repeats", "200"]
    args += ["--cache", str(tmp_path / "cache"), "-o", str(tmp_path / "lut.json")]
    env = {**os.environ, "PYTHONPATH": str(REPO), "DEPLOYCC_CACHE": str(tmp_path / "dc")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploycc.cli.main", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tracker = Tracker(fleet.address, timeout=5)
    try:
        _wait_for(lambda: tracker.devices("cpu")[1] < 2 or proc.poll() is not None, 600, "no device leased")
        assert proc.poll() is None, f"the command ended before it leased a device: {proc.stderr.read()[-500:]}"
        children = descendants(proc.pid)
        assert children, "a leasing command has child processes"
        proc.send_signal(sig)
        proc.wait(BOUND_S)
        _wait_for(lambda: not [p for p in children if alive(p)], 10, f"children {children} still alive")
        fleet.wait_free("cpu", 2)
        err = proc.stderr.read()
        assert proc.returncode == 130 and "Traceback" not in err, f"exit {proc.returncode}: {err[-2000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
