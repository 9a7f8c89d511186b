"""Messages that match what happened: hints name the real files, no line is said twice, and the
warnings that matter (INT8 calibrated on synthetic scenes) reach the screen."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from helpers import run_cli
from int8_nets import small_net
from PIL import Image


@pytest.fixture
def net_onnx(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "net.onnx"
    onnx.save(small_net(), path)
    return path


def test_int8_on_synthetic_scenes_is_a_warning_with_its_fix(net_onnx, tmp_path, capsys):
    assert run_cli(["build", net_onnx, "-t", "cpu-int8", "-o", tmp_path / "q", "--json"]) == 0
    out = capsys.readouterr()
    (warning,) = json.loads(out.out)["warnings"]
    assert warning.startswith("INT8 ranges calibrated on 8 synthetic street scenes") and "--calib-data" in warning
    assert f"warning: {warning}" in " ".join(out.err.split())  # on screen, even with --json


def test_int8_on_the_users_images_has_no_warning(net_onnx, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 128, 3), dtype=np.uint8)).save(images / f"{i}.png")
    assert run_cli(["build", net_onnx, "-t", "cpu-int8", "-o", tmp_path / "q", "--calib-data", images]) == 0
    assert "warning" not in capsys.readouterr().err


def test_an_fp32_build_has_no_calibration_warning(net_onnx, tmp_path, capsys):
    assert run_cli(["build", net_onnx, "-t", "cpu-ort", "-o", tmp_path / "f"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.skipif(
    shutil.which("aarch64-linux-gnu-gcc") is None,
    reason="aarch64-linux-gnu-gcc is not installed (make setup installs gcc-aarch64-linux-gnu)",
)
def test_an_arm64_build_says_its_device_step_once_with_the_real_model(net_onnx, tmp_path, capsys):
    assert run_cli(["build", net_onnx, "-t", "arm64-cpu", "-o", tmp_path / "a"]) == 3
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count("deploycc verify") == 1, text
    assert f"deploycc verify {tmp_path / 'a'} --reference {net_onnx} --remote" in text
    assert "MODEL" not in text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == len(set(lines))  # no line said twice
