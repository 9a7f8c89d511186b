"""A TVM target that says fp16 compiles fp16 (Relax mixed precision on CUDA), or is refused in one line."""

from __future__ import annotations

from helpers import run_cli

from deploycc.pipeline.artifact import read_manifest

CPU_FP16 = """
name = "cpu-fp16"
description = "a CPU target asking TVM for fp16"
backend = "tvm"
precision = "fp16"
passes = ["fold-bn"]
[hardware]
[verify]
atol_rel = 2e-2
rtol = 1e-2
[tvm]
target = { kind = "llvm", mcpu = "host", num-cores = 2 }
"""


def test_v100_compiles_half_precision_cuda_and_records_it(net_onnx, tmp_path):
    out, fp32 = tmp_path / "net.v100", tmp_path / "net.h100"
    # no GPU here: built, not verified (exit 3), and the manifest says what the code computes in
    assert run_cli(["build", net_onnx, "--target", "v100", "-o", out]) == 3
    m = read_manifest(out)
    assert m["backend_info"]["precision"] == {
        "compute": "float16",
        "accumulate": "float32",
        "pass": "relax.transform.ToMixedPrecision",
    }
    assert m["target"]["precision"] == "fp16" and m["verification"]["status"] == "not_run"
    assert run_cli(["build", net_onnx, "--target", "h100", "-o", fp32]) == 3
    assert read_manifest(fp32)["backend_info"]["precision"] == {"compute": "float32"}
    # the CUDA C source the library carries computes in half only for the fp16 target
    assert b"half" in (out / "model.so").read_bytes() and b"half" not in (fp32 / "model.so").read_bytes()


def test_fp16_on_tvm_cpu_is_refused_in_one_line(net_onnx, tmp_path, capsys):
    board = tmp_path / "cpu-fp16.toml"
    board.write_text(CPU_FP16)
    assert run_cli(["build", net_onnx, "--target", board, "-o", tmp_path / "x"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "precision fp16 is not supported on TVM's llvm (CPU) path" in err[0]
    assert not (tmp_path / "x").exists()
