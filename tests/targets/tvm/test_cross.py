"""TVM artifacts for other machines: aarch64 (arm64-cpu), CUDA sm_72 + aarch64 (Xavier), sm_90 (H100)."""

from __future__ import annotations

import shutil
import struct

import pytest
from helpers import run_cli

from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.tvm.cuda import cubin_arch, nvrtc_unavailable

EM_AARCH64 = 183
NO_CROSS = shutil.which("aarch64-linux-gnu-gcc") is None
NO_SM72 = nvrtc_unavailable("sm_72")


def _elf_machine(path) -> int:
    data = path.read_bytes()[:20]
    assert data[:4] == b"\x7fELF"
    return struct.unpack_from("<H", data, 18)[0]


@pytest.mark.skipif(
    NO_CROSS, reason="aarch64-linux-gnu-gcc is not installed (make setup installs gcc-aarch64-linux-gnu)"
)
def test_arm64_cpu_library_is_an_aarch64_elf(net_onnx, tmp_path):
    out = tmp_path / "net.arm64"
    # built, but not verified on this x86 machine: exit 3 (unverified), never "ok"
    assert run_cli(["build", net_onnx, "--target", "arm64-cpu", "-o", out]) == 3
    m = read_manifest(out)
    assert _elf_machine(out / "model.so") == EM_AARCH64
    v = m["verification"]
    assert v["status"] == "not_run" and v["ok"] is False and "--remote" in v["needs"] and "skipped" not in v
    assert m["remaining"][0]["kind"] == "run"


@pytest.mark.skipif(
    NO_CROSS or NO_SM72 is not None,
    reason=f"needs aarch64-linux-gnu-gcc and NVRTC 12 for sm_72 ({NO_SM72 or 'cross compiler missing'})",
)
def test_xavier_tvm_library_is_aarch64_with_sm72_kernels(net_onnx, tmp_path):
    out = tmp_path / "net.xavier-tvm"
    assert run_cli(["build", net_onnx, "--target", "xavier-int8", "--backend", "tvm", "-o", out]) == 3
    m = read_manifest(out)
    assert m["verification"]["status"] == "not_run"
    assert _elf_machine(out / "model.so") == EM_AARCH64
    kernels = m["backend_info"]["cuda_kernels"]
    assert kernels["precompiled"] and kernels["arch"] == "sm_72"
    assert cubin_arch((out / "kernels.sm_72.cubin").read_bytes()) == "sm_72"
    assert m["target"]["precision"] == "fp32"  # TVM has no INT8 conv kernels: built in FP32


def test_backend_override_needs_a_settings_table(net_onnx, tmp_path, capsys):
    assert run_cli(["build", net_onnx, "--target", "xavier-dla-int8", "--backend", "tvm", "-o", tmp_path / "x"]) == 2
    assert "has no tvm settings table" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.gpu
def test_h100_build_runs_and_verifies_on_a_gpu(net_onnx, tmp_path):
    from deploycc.targets.tvm.backend import _has_cuda

    if not _has_cuda():
        pytest.skip("no NVIDIA GPU on this machine: the sm_90 build is verified only where one exists")
    out = tmp_path / "net.h100"
    assert run_cli(["build", net_onnx, "--target", "h100", "-o", out]) == 0
    assert read_manifest(out)["verification"]["ok"]


def test_missing_cross_compiler_is_one_sentence(net_onnx, tmp_path, capsys):
    if shutil.which("arm-linux-gnueabihf-gcc"):
        pytest.skip("arm-linux-gnueabihf-gcc is installed here")
    assert run_cli(["build", net_onnx, "--target", "mali-t628", "-o", tmp_path / "m"]) == 2
    err = capsys.readouterr().err
    assert "arm-linux-gnueabihf-gcc is not installed" in err and "gcc-arm-linux-gnueabihf" in err
    assert not (tmp_path / "m").exists()
