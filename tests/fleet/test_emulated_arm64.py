"""The emulated arm64 device closes the loop for a cross-compiled artifact.

An ``arm64-cpu`` artifact (aarch64 ELF, cross-compiled here) is uploaded through the fleet to a
real arm64 Python with the real aarch64 TVM wheel under QEMU user mode (``make arm64-device``),
run there, and its numerics checked against ONNX Runtime: ``build`` alone exits 3 (unverified),
``verify --remote`` on the device exits 0; ``bench --remote`` and ``lut build --remote`` label
their figures as emulated, and the latency gate refuses such a LUT. Skips with the reason where
the device or the cross compiler is missing. One module-scoped device: QEMU is slow to start.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest
from helpers import run_cli

from deploycc.fleet import emulator

REASON = emulator.unavailable() or (
    None if shutil.which("aarch64-linux-gnu-gcc") else "aarch64-linux-gnu-gcc is not installed (make setup installs it)"
)
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"emulated arm64 device: {REASON}")
KEY = "arm64-emulated"
START_TIMEOUT = 300.0  # an emulated Python importing TVM's runtime on a loaded 2-core machine


@pytest.fixture(scope="module")
def device(tracker_only):
    """A loopback tracker and one emulated arm64 device registered under KEY (killed at teardown)."""
    fleet = tracker_only
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv, env = emulator.server_command(fleet.address, KEY, port=port, port_end=port + 1)
    log = open(fleet.logdir / "emulated.log", "w")
    fleet.procs[f"server-{port}"] = subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    _wait_registered(fleet, fleet.procs[f"server-{port}"])
    return fleet


def _wait_registered(fleet, proc) -> None:
    from deploycc.fleet import Tracker

    tracker = Tracker(fleet.address, timeout=5)
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        if tracker.devices(KEY)[1] >= 1:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"emulated device exited: {(fleet.logdir / 'emulated.log').read_text()[-2000:]}")
        time.sleep(1.0)
    raise TimeoutError(f"the emulated device did not register within {START_TIMEOUT} s")


@pytest.fixture(scope="module")
def arm64_artifact(tmp_path_factory):
    import onnx
    from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model

    folder = tmp_path_factory.mktemp("arm64-artifact")
    model = folder / "tiny.onnx"
    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",)), model)
    assert run_cli(["build", model, "--target", "arm64-cpu", "-o", folder / "tiny.arm64"]) == 3  # not verified here
    return {"onnx": model, "arm64": folder / "tiny.arm64"}


def test_arm64_artifact_is_verified_on_the_emulated_device(device, arm64_artifact, capsys):
    art = arm64_artifact["arm64"]
    assert run_cli(["verify", art, "--reference", arm64_artifact["onnx"]]) == 3  # cannot run on x86
    assert "--remote" in capsys.readouterr().err
    start = time.perf_counter()
    assert (
        run_cli(
            ["verify", art, "--reference", arm64_artifact["onnx"], "--remote", device.address, "--key", KEY, "--json"]
        )
        == 0
    )
    seconds = time.perf_counter() - start
    data = json.loads(capsys.readouterr().out)
    facts = data["remote"]["device_facts"]
    assert facts["machine"] == "aarch64" and "qemu-aarch64" in facts["emulated"]
    out = data["numerics"]["outputs"][0]
    assert data["numerics"]["ok"] and data["numerics"]["gated"] and out["cosine"] > 0.99999
    print(f"emulated arm64 verify: max abs {out['max_abs']:.3g}, cosine {out['cosine']:.8f}, {seconds:.1f} s")


def test_emulated_latency_is_labelled_and_never_a_device_figure(device, arm64_artifact, capsys):
    assert (
        run_cli(
            [
                "bench",
                arm64_artifact["arm64"],
                "--remote",
                device.address,
                "--key",
                KEY,
                "--max-repeats",
                "3",
                "--max-seconds",
                "5",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["remote"]["timing"].startswith("EMULATED (") and "not a device figure" in data["remote"]["timing"]
    assert data["remote"]["device_facts"]["emulated"]


def test_lut_build_remote_on_the_emulated_device_is_labelled_and_refused_by_the_gate(
    device, arm64_artifact, tmp_path, capsys
):
    out = tmp_path / "fbnet.arm64.lut.json"
    args = [
        "lut",
        "build",
        "--space",
        "fbnet",
        "--target",
        "arm64-cpu",
        "--input-shape",
        "1x3x32x32",
        "--units",
        "k3_e1",
        "--threads",
        "1",
        "--max-repeats",
        "3",
        "--statistic",
        "min",
        "--cache",
        tmp_path / "cache",
        "-o",
        out,
        "--remote",
        device.address,
        "--key",
        KEY,
        "--json",
    ]
    assert run_cli(args) == 0
    from deploycc.lut import load_lut

    lut = load_lut(out)
    timed = [e for e in lut.entries.values() if e.get("measured", True)]
    assert timed and all("qemu-aarch64" in e["latency"]["emulated"] for e in timed)
    assert lut.machine["fleet"]["emulated"] and lut.machine["fleet"]["key"] == KEY
    from deploycc.core.errors import UserError
    from deploycc.lut.gate import latency_check

    with pytest.raises(UserError, match="measured under emulation"):
        latency_check(arm64_artifact["arm64"], out, 10.0)


def test_tuning_on_the_emulated_device_is_labelled_and_its_build_verifies_there(
    device, arm64_artifact, tmp_path, capsys
):
    """`build --tune-trials --remote` measures arm64 candidates (cross-linked here) on the device;
    emulated speed is not the device's, so the manifest says so."""
    out = tmp_path / "tuned.arm64"
    assert (
        run_cli(
            [
                "build",
                arm64_artifact["onnx"],
                "--target",
                "arm64-cpu",
                "--tune-trials",
                "3",
                "--tuning-db",
                tmp_path / "db",
                "--remote",
                device.address,
                "--key",
                KEY,
                "-o",
                out,
            ]
        )
        == 3
    )
    info = json.loads((out / "manifest.json").read_text())["backend_info"]
    measured = info["tuning_space"]["measured_on"]
    assert "qemu-aarch64" in measured["emulated"] and measured["note"].startswith("EMULATED")
    assert info["schedules"]["tuned"] == 1 and info["schedules"]["unscheduled"] == 0
    capsys.readouterr()
    assert (
        run_cli(["verify", out, "--reference", arm64_artifact["onnx"], "--remote", device.address, "--key", KEY]) == 0
    )
