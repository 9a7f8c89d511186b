"""ORT's INT8 kernels per CPU: deploycc's choice is exact on the CPU that runs the suite.

The probe is one Q/DQ 1x1 conv that ORT fuses into a QLinearConv: activations 255 (u8), weights
[127, 127, -128, -128] x 2 (s8). Its exact int32 dot product is -1020 (output -1024 after
requantizing by 16); a kernel that sums u8 x s8 pairs into int16 with saturation (AVX2's
vpmaddubsw) gets 32767 - 32768 per four and prints 0. On a VNNI CPU (the CI machine) these tests
check the branch of deploycc.targets.onnxruntime.int8_cpu that the AVX2-only machine it was written on cannot.
"""

from __future__ import annotations

import numpy as np
import onnx.parser
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from deploycc.core.numerics import run_reference
from deploycc.targets.onnxruntime import int8_cpu

PROBE = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,8,1,1] x) => (float[1,1,1,1] y)
{ xq = QuantizeLinear(x, sx, zx)
  xd = DequantizeLinear(xq, sx, zx)
  wd = DequantizeLinear(wq, sw, zw)
  c = Conv(xd, wd)
  yq = QuantizeLinear(c, sy, zy)
  y = DequantizeLinear(yq, sy, zy) }"""
AVX512 = {"avx2", "avx512f", "avx512bw", "avx512dq", "avx512vl"}


def _probe():
    model = onnx.parser.parse_model(PROBE)
    w = np.array([127, 127, -128, -128] * 2, np.int8).reshape(1, 8, 1, 1)
    for name, v in [
        ("sx", np.float32(1)),
        ("zx", np.uint8(0)),
        ("wq", w),
        ("sw", np.float32(1)),
        ("zw", np.int8(0)),
        ("sy", np.float32(16)),
        ("zy", np.uint8(128)),
    ]:
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(v), name))
    return model, {"x": np.full((1, 8, 1, 1), 255, np.float32)}


def _int8_run(model, feed, chosen: bool) -> float:
    """The probe on ORT's fused INT8 kernels: deploycc's choice for this CPU, or ORT's defaults."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if chosen:
        int8_cpu.apply(so)
    return float(
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        .run(None, feed)[0]
        .ravel()[0]
    )


@pytest.mark.parametrize(
    "machine, flags, vnni, precise",
    [
        ("x86_64", AVX512 | {"avx512_vnni"}, True, False),  # Ice Lake, Zen 4: AVX-512 VNNI kernels
        ("x86_64", {"avx2", "avx_vnni"}, True, False),  # Alder Lake: AVX-VNNI kernels
        ("x86_64", AVX512 | {"avx_vnni"}, False, True),  # MLAS's AVX-512 core kernel wins, no VNNI
        ("x86_64", {"avx2", "fma"}, False, True),  # this EPYC: vpmaddubsw saturates
        ("x86_64", None, None, True),  # flags unreadable: u8u8, exact anywhere
        ("aarch64", None, None, False),  # ARM: 32-bit dot products
    ],
)
def test_choice_per_cpu(machine, flags, vnni, precise):
    choice = int8_cpu.choose(machine, flags)
    assert (choice.vnni, choice.x64quantprecision) == (vnni, precise)
    assert choice.to_dict()["kernels"].startswith("u8u8" if precise else "ORT default")


def test_chosen_kernels_compute_the_qdq_model_exactly():
    model, feed = _probe()
    assert run_reference(model, feed)[0].ravel()[0] == -1024.0  # the Q/DQ semantics
    assert _int8_run(model, feed, chosen=True) == -1024.0


def test_cpu_flags_agree_with_what_ort_computes():
    """Where the flags say "no VNNI" ORT's default u8s8 kernels saturate, and only there."""
    host = int8_cpu.host_int8_kernels()
    if host.vnni is None:
        pytest.skip(f"no x86 CPU flags to check: {host.feature}")
    model, feed = _probe()
    assert (_int8_run(model, feed, chosen=False) != -1024.0) == host.x64quantprecision
