"""targets/tvm/cuda.py: TVM's CUDA kernels compiled ahead of time with NVRTC 12.9 for the target GPU.

The V100 is float16: dlight tensorizes its large matrix products with wmma, whose ``mma.h``
includes ``crt/mma.h`` (the nvcc wheel's headers). Without that header NVRTC stopped lat_small's
V100 build with a traceback (exit 4); now the header is part of the union, and kernels NVRTC
refuses fail the build in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from helpers import make_model, run_cli

from deploycc.core.errors import GateFailed
from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.tvm.cuda import (
    _cuda_path,
    _header_dirs,
    cubin_arch,
    first_nvrtc_error,
    nvrtc_unavailable,
    precompile_source,
)

NO_SM70 = nvrtc_unavailable("sm_70")
needs_nvrtc = pytest.mark.skipif(NO_SM70 is not None, reason=f"NVRTC 12 for sm_70: {NO_SM70}")

WMMA_TILE = r"""
#include <mma.h>
extern "C" __global__ void __launch_bounds__(32) tile(half* a, half* b, float* c) {
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, half, nvcuda::wmma::row_major> fa;
  nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, half, nvcuda::wmma::col_major> fb;
  nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> fc;
  nvcuda::wmma::fill_fragment(fc, 0.0f);
  nvcuda::wmma::load_matrix_sync(fa, a, 16);
  nvcuda::wmma::load_matrix_sync(fb, b, 16);
  nvcuda::wmma::mma_sync(fc, fa, fb, fc);
  nvcuda::wmma::store_matrix_sync(c, fc, 16, nvcuda::wmma::mem_row_major);
}
"""
# 128 channels on a 16 x 16 map: every matmul extent above dlight's tensorization threshold (64)
WIDE_1X1 = """<ir_version: 8, opset_import: ["" : 17]>
wide (float[1,128,16,16] x) => (float[1,128,16,16] y)
{ y = Conv<kernel_shape=[1,1]>(x, w) }"""


@needs_nvrtc
def test_tensor_core_kernel_compiles_for_volta(tmp_path):
    files, facts = precompile_source(WMMA_TILE, "sm_70", tmp_path)
    assert facts["precompiled"] and files == ["kernels.sm_70.cubin"]
    assert cubin_arch((tmp_path / files[0]).read_bytes()) == "sm_70"


@needs_nvrtc
def test_header_union_holds_crt():
    dirs = _header_dirs()
    assert dirs is not None
    with _cuda_path(dirs):
        include = Path(os.environ["CUDA_PATH"]) / "include"
        assert all((include / name).exists() for name in ("cuda_runtime.h", "cuda/std/cstdint", "crt/mma.h"))


@needs_nvrtc
def test_kernels_nvrtc_refuses_fail_the_build_in_one_line(tmp_path):
    broken = 'extern "C" __global__ void k(float* a) { a[0] = undefined_name; }'
    with pytest.raises(GateFailed) as err:
        precompile_source(broken, "sm_70", tmp_path)
    line = str(err.value)
    assert "\n" not in line and "sm_70" in line and "undefined_name" in line
    assert not list(tmp_path.glob("*.cubin"))


def test_first_nvrtc_error_is_the_error_line():
    log = (
        "NVRTC compilation failed:\n"
        '/cache/cuda12-headers/include/mma.h(55): catastrophic error: cannot open source file "crt/mma.h"\n'
        '  #include "crt/mma.h"\n\n'
        '1 catastrophic error detected in the compilation of "tvm_kernels.cu".\n'
    )
    assert first_nvrtc_error(log).endswith('catastrophic error: cannot open source file "crt/mma.h"')
    assert first_nvrtc_error("NVRTC compilation failed:\n") == "NVRTC compilation failed:"


@needs_nvrtc
def test_v100_float16_build_precompiles_its_tensor_core_kernels(tmp_path):
    path = tmp_path / "wide.onnx"
    onnx.save(make_model(WIDE_1X1, {"w": (128, 128, 1, 1)}), path)
    out = tmp_path / "wide.v100"
    assert run_cli(["build", path, "--target", "v100", "-o", out]) == 3
    kernels = read_manifest(out)["backend_info"]["cuda_kernels"]
    assert kernels["precompiled"], kernels
    assert b"wmma" in (out / "model.so").read_bytes()  # the tensor-core path, which includes mma.h
