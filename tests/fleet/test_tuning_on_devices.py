"""`deploycc build --tune-trials N --remote HOST:PORT --key KEY`: tuning measures the rule space's
candidates on the fleet's devices through MetaSchedule's RPC runner, against a real loopback
tracker with two x86 rpc_servers (the emulated arm64 device is covered in test_emulated_arm64)."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from deploycc.targets.tvm import tuning as tvm_tuning


def test_candidates_are_measured_on_the_fleet_and_the_build_applies_them(fleet, artifacts, tmp_path, capsys):
    db, out = tmp_path / "db", tmp_path / "tuned"
    args = [
        "build",
        artifacts["onnx"],
        "--target",
        "cpu",
        "--tune-trials",
        "6",
        "--tuning-db",
        db,
        "--remote",
        fleet.address,
        "--key",
        "cpu",
        "-o",
        out,
        "--json",
    ]
    assert run_cli(args) == 0
    info = json.loads((out / "manifest.json").read_text())["backend_info"]
    assert info["tuning_space"]["tasks"] == 1 and info["schedules"]["tuned"] == 1, info
    assert info["tuning_space"]["measured_on"]["remote"] == fleet.address
    assert info["tuning_space"]["measured_on"]["key"] == "cpu"
    records = [json.loads(line) for line in (db / tvm_tuning.RECORDS).read_text().splitlines()]
    secs = [float(s) for _, record in records for s in record[1]]
    # every candidate ran on a device: 6, or the whole rule space where this CPU's vector width gives fewer tiles
    assert len(records) == min(6, info["tuning_space"]["candidates"]) >= 1, info["tuning_space"]
    assert secs and all(0 < s < 1e9 for s in secs)
    capsys.readouterr()


@pytest.mark.parametrize(
    "remote, key, needle",
    [
        (None, "nobody", "--key nobody: no device is registered under this key"),
        ("127.0.0.1:1", "cpu", "--remote 127.0.0.1:1: cannot reach a TVM RPC tracker there"),
    ],
)
def test_no_device_or_no_tracker_is_one_line_exit_2_and_nothing_written(
    fleet, artifacts, tmp_path, capsys, remote, key, needle
):
    out = tmp_path / "tuned"
    args = [
        "build",
        artifacts["onnx"],
        "--target",
        "cpu",
        "--tune-trials",
        "4",
        "--tuning-db",
        tmp_path / "db",
        "--remote",
        remote or fleet.address,
        "--key",
        key,
        "-o",
        out,
    ]
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert needle in err[-1] and not out.exists()


def test_remote_without_tuning_tuning_elsewhere_without_remote_and_lut_tuning_remote_are_refused(
    artifacts, tmp_path, capsys
):
    assert (
        run_cli(
            [
                "build",
                artifacts["onnx"],
                "--target",
                "cpu",
                "--remote",
                "127.0.0.1:1",
                "--key",
                "k",
                "-o",
                tmp_path / "a",
            ]
        )
        == 2
    )
    assert "apply only with --tune-trials" in capsys.readouterr().err
    assert (
        run_cli(["build", artifacts["onnx"], "--target", "arm64-cpu", "--tune-trials", "4", "-o", tmp_path / "b"]) == 2
    )
    assert "--remote HOST:PORT --key KEY" in capsys.readouterr().err
    assert (
        run_cli(
            [
                "lut",
                "build",
                "--space",
                "fbnet",
                "--target",
                "cpu",
                "--tune-trials",
                "4",
                "--remote",
                "127.0.0.1:1",
                "--key",
                "k",
                "-o",
                tmp_path / "l.json",
            ]
        )
        == 2
    )
    assert "lut build times entries on the fleet but would tune them here" in capsys.readouterr().err
    assert not (tmp_path / "l.json").exists()
