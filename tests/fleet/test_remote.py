"""The remote path end to end for the ``cpu`` target, against a real loopback tracker and servers.

Run, time and verify an artifact on a device; ``bench``/``verify``/``lut build`` with ``--remote``;
fan-out over both devices; a device killed mid-run (its work moves to the other one), a device
that hangs mid-run (bounded by the job timeout, work moves), and the last device dropping (the
work is reported, the run ends).
"""

from __future__ import annotations

import json
import signal
import threading
import time

import numpy as np
import pytest
from helpers import run_cli

from deploycc.core.errors import Unavailable
from deploycc.core.numerics import random_feeds
from deploycc.fleet import RemoteError, RemoteSession, Tracker, fan_out, open_remote
from deploycc.pipeline.runtime import open_artifact
from deploycc.verify.measure import Protocol

FAST = Protocol(warmup=1, min_repeats=3, max_repeats=6, max_seconds=5.0, window=2)


def test_run_on_a_device_matches_the_local_run_and_times_with_the_protocol(fleet, artifacts):
    _manifest, remote = open_remote(artifacts["cpu"], fleet.address, "cpu", threads=1)
    try:
        assert remote.device in fleet.servers
        feeds = random_feeds(remote.inputs, 3)
        got = remote.run(feeds)
        expected = open_artifact(artifacts["cpu"])[1].run(feeds)
        assert [g.shape for g in got] == [e.shape for e in expected]
        np.testing.assert_array_equal(got[0], expected[0])  # the same library, the same CPU
        lat = remote.time(feeds, FAST)
        assert lat.clock == "device" and FAST.min_repeats <= lat.runs <= FAST.max_repeats
        assert 0 < lat.min_ms <= lat.median_ms <= lat.p99_ms
    finally:
        remote.close()


def test_bench_and_verify_with_remote(fleet, artifacts, capsys):
    assert (
        run_cli(["bench", artifacts["cpu"], "--remote", fleet.address, "--key", "cpu", "--max-repeats", "5", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["remote"]["device"] in fleet.servers and data["latency"]["clock"] == "device"
    assert (
        run_cli(
            [
                "verify",
                artifacts["cpu"],
                "--reference",
                artifacts["onnx"],
                "--remote",
                fleet.address,
                "--key",
                "cpu",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["numerics"]["ok"] and data["remote"]["device"] in fleet.servers


def test_bad_remote_input_is_one_line_exit_2(fleet, artifacts, capsys):
    assert run_cli(["bench", artifacts["cpu"], "--remote", fleet.address, "--key", "jetson"]) == 2
    assert "--key jetson: no device with this key is registered" in capsys.readouterr().err
    assert run_cli(["bench", artifacts["cpu"], "--remote", fleet.address]) == 2
    assert "--remote HOST:PORT and --key KEY go together" in capsys.readouterr().err
    assert run_cli(["bench", artifacts["cpu-ort"], "--remote", fleet.address, "--key", "cpu"]) == 2
    assert "remote runs go through TVM's RPC, which loads TVM modules only" in capsys.readouterr().err
    with pytest.raises(Unavailable):
        open_remote(artifacts["cpu-ort"], fleet.address, "cpu")


def test_lut_build_remote_spreads_entries_over_the_fleet(fleet, tmp_path, capsys):
    out = tmp_path / "fbnet.cpu.lut.json"
    assert (
        run_cli(
            [
                "lut",
                "build",
                "--space",
                "fbnet",
                "--target",
                "cpu",
                "--input-shape",
                "1x3x32x32",
                "--units",
                "k3_e1",
                "--threads",
                "1",
                "--max-repeats",
                "4",
                "--statistic",
                "min",
                "--cache",
                tmp_path / "cache",
                "-o",
                out,
                "--remote",
                fleet.address,
                "--key",
                "cpu",
                "--json",
            ]
        )
        == 0
    )
    from deploycc.lut import load_lut

    lut = load_lut(out)
    timed = [e for e in lut.entries.values() if e.get("measured", True)]
    assert timed and all(e["device"] in fleet.servers and e["latency"]["clock"] == "device" for e in timed)
    stats = lut.machine["fleet"]["devices"]
    assert sum(d["jobs"] for d in stats.values()) == len(timed)
    assert set(stats) <= set(fleet.servers) and lut.machine["fleet"]["key"] == "cpu"
    # a second run is served from the remote cache: nothing is measured again
    assert (
        run_cli(
            [
                "lut",
                "build",
                "--space",
                "fbnet",
                "--target",
                "cpu",
                "--input-shape",
                "1x3x32x32",
                "--units",
                "k3_e1",
                "--threads",
                "1",
                "--max-repeats",
                "4",
                "--statistic",
                "min",
                "--cache",
                tmp_path / "cache",
                "-o",
                out,
                "--remote",
                fleet.address,
                "--key",
                "cpu",
                "--json",
            ]
        )
        == 0
    )
    assert load_lut(out).machine["fleet"]["jobs_run"] == 0


def _busy_work(artifact, seconds: float):
    """A real remote workload of about ``seconds``: load the artifact, run it again and again."""

    def work(lease, _prepared):
        session = RemoteSession(lease, artifact, call_timeout=10)
        feeds = random_feeds(session.inputs, 0)
        end = time.monotonic() + seconds
        runs = 0
        while time.monotonic() < end:
            session.run(feeds)
            runs += 1
        return runs

    return work


def _drop_first_started_device(fleet, sig, delay: float):
    """A progress callback that drops the device of the first started job ``delay`` s later."""
    victim = {}

    def progress(event, job, device, detail):
        if event == "start" and not victim:
            victim["device"] = device
            threading.Timer(delay, fleet.kill, (device, sig)).start()

    return progress, victim


def test_a_device_killed_mid_run_has_its_work_retried_on_the_other(fleet, artifacts, extra_servers):
    devices = extra_servers("drop", 2)
    progress, victim = _drop_first_started_device(fleet, signal.SIGKILL, 0.5)
    start = time.monotonic()
    result = fan_out(
        Tracker(fleet.address),
        "drop",
        [(i, i) for i in range(4)],
        lambda p: p,
        _busy_work(artifacts["cpu"], 1.0),
        job_timeout=20,
        lease_timeout=10,
        progress=progress,
    )
    assert time.monotonic() - start < 60
    assert result.ok, result.failures
    assert sorted(result.results) == ["0", "1", "2", "3"]
    lost, survivor = victim["device"], next(d for d in devices if d != victim["device"])
    assert result.devices[lost]["lost"] and result.devices[lost]["failures"] == 1, result.devices
    assert all(device == survivor for _, device in result.results.values() if device != lost)
    assert result.devices[survivor]["jobs"] >= 3
    # now the last device drops too: its job is reported, not retried forever, and the run ends
    fleet.wait_free("drop", 1)  # the survivor re-registers once its sessions have ended
    progress, victim = _drop_first_started_device(fleet, signal.SIGKILL, 0.5)
    start = time.monotonic()
    result = fan_out(
        Tracker(fleet.address),
        "drop",
        [(i, i) for i in range(3)],
        lambda p: p,
        _busy_work(artifacts["cpu"], 1.0),
        job_timeout=20,
        lease_timeout=3,
        progress=progress,
    )
    assert time.monotonic() - start < 60
    assert not result.ok and victim["device"] == survivor
    assert "could not be run on any device" in result.failure_line()


def test_a_device_that_hangs_is_bounded_by_the_job_timeout(fleet, artifacts, extra_servers):
    devices = extra_servers("hang", 2)
    progress, victim = _drop_first_started_device(fleet, signal.SIGSTOP, 0.3)
    start = time.monotonic()
    result = fan_out(
        Tracker(fleet.address),
        "hang",
        [(i, i) for i in range(3)],
        lambda p: p,
        _busy_work(artifacts["cpu"], 0.5),
        job_timeout=6,
        lease_timeout=5,
        progress=progress,
    )
    assert time.monotonic() - start < 60
    assert result.ok, result.failures
    stuck = result.devices[victim["device"]]
    assert stuck["lost"] and "did not finish within 6 s" in stuck["errors"][0]
    assert {d for _, d in result.results.values()} == {next(d for d in devices if d != victim["device"])}


def test_no_device_with_the_key_and_unreachable_tracker(fleet):
    with pytest.raises(RemoteError, match="--key nobody: no device with this key is registered at RPC tracker"):
        fan_out(Tracker(fleet.address), "nobody", [(0, 0)], lambda p: p, lambda lease, p: p)


@pytest.mark.slow
def test_lut_validate_remote(fleet, tmp_path, capsys):
    """Five sampled FBNet networks built here and timed on the fleet (about 40 s of compiles)."""
    out = tmp_path / "fbnet.cpu.lut.json"
    common = ["--cache", tmp_path / "cache", "--remote", fleet.address, "--key", "cpu", "--json"]
    assert (
        run_cli(
            [
                "lut",
                "build",
                "--space",
                "fbnet",
                "--target",
                "cpu",
                "--input-shape",
                "1x3x32x32",
                "--units",
                "k3_e1,skip",
                "--threads",
                "1",
                "--max-repeats",
                "4",
                "--statistic",
                "min",
                "-o",
                out,
                *common,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        run_cli(["lut", "validate", "--lut", out, "--n", "5", "--train", "3", "-o", tmp_path / "report", *common]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["n"] == 5 and set(data["devices"]) <= set(fleet.servers)
    assert sum(d["jobs"] for d in data["fleet"]["devices"].values()) == 5
    assert (tmp_path / "report").is_dir()
