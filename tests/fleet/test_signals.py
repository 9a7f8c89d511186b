"""A long-running fleet command stops its children on SIGTERM and SIGINT (issue 25, "Processes").

``deploycc lut build --remote`` holds each device lease in a child process forked from a fork
server (``deploycc.fleet.worker``); ``build --tune-trials --remote`` runs TVM's tuner, which
measures on the fleet's devices. The real command runs as a subprocess against the loopback fleet;
once it has started, it is signalled: it must exit 130, every process it started gone within a
bound, and the devices free again on the tracker.
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


def _signal_once_started(fleet, tmp_path, args: list, started, sig) -> str:
    """Run ``deploycc ARGS``, send ``sig`` once ``started(stderr so far)`` holds, and check that it
    exits 130 ("interrupted") with every process it started gone and the fleet's devices free."""
    from deploycc.fleet import Tracker

    env = {**os.environ, "PYTHONPATH": str(REPO), "DEPLOYCC_CACHE": str(tmp_path / "dc")}
    err_file = tmp_path / "stderr.txt"
    with err_file.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploycc.cli.main", *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
    tracker = Tracker(fleet.address, timeout=5)
    try:
        _wait_for(lambda: started(tracker, err_file.read_text()) or proc.poll() is not None, 600, "never started")
        assert proc.poll() is None, f"the command ended before the signal: {err_file.read_text()[-500:]}"
        children = descendants(proc.pid)
        proc.send_signal(sig)
        proc.wait(BOUND_S)
        _wait_for(lambda: not [p for p in children if alive(p)], 10, f"children {children} still alive")
        fleet.wait_free("cpu", 2)
        text = err_file.read_text()
        assert proc.returncode == 130 and "interrupted" in text, f"exit {proc.returncode}: {text[-2000:]}"
        return text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_lut_build_on_the_fleet_leaves_no_child_and_frees_its_devices(fleet, tmp_path, sig):
    args = ["lut", "build", "--space", "fbnet", "--input-shape", "1x3x32x32", "--units", "k3_e1,k3_e6,k5_e3"]
    args += ["-t", "cpu", "--remote", fleet.address, "--key", "cpu", "--max-repeats", "200"]
    args += ["--cache", str(tmp_path / "cache"), "-o", str(tmp_path / "lut.json")]
    text = _signal_once_started(fleet, tmp_path, args, lambda tracker, err: tracker.devices("cpu")[1] < 2, sig)
    assert "Traceback" not in text and not (tmp_path / "lut.json").exists()


def test_tuning_on_the_fleet_stops_on_sigterm(fleet, tmp_path):
    """TVM's tuner calls deploycc's builder back from native code and turned the interrupt raised
    there into a failed candidate: the build went on to the end and exited 0."""
    import onnx
    from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model

    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",)), tmp_path / "tiny.onnx")
    args = ["build", tmp_path / "tiny.onnx", "-t", "cpu", "-o", tmp_path / "art", "--tune-trials", "64"]
    args += ["--remote", fleet.address, "--key", "cpu", "--tuning-db", tmp_path / "db"]
    _signal_once_started(
        fleet, tmp_path, [str(a) for a in args], lambda t, err: "tuning 1 tasks" in err, signal.SIGTERM
    )
    assert not (tmp_path / "art").exists()
