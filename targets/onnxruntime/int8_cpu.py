"""Which ONNX Runtime INT8 CPU kernels compute a Q/DQ model exactly on this CPU, and the session
setting deploycc uses where the default ones do not.

An INT8 conv or matmul on ORT's CPU provider is an integer dot product ``sum_k a_k * w_k`` of u8
activations ``a`` (on x86 ORT shifts s8 activations to u8) and s8 weights ``w``, accumulated in
int32 and then requantized; the Q/DQ model's semantics (ORT with optimizations off: float
fake-quantization) equal that integer arithmetic up to float rounding. The kernels (MLAS) differ
by x86 CPU:

- **VNNI** (AVX-512 VNNI with AVX-512 BW/DQ/VL, or AVX-VNNI): ``vpdpbusd`` adds four u8 x s8
  products straight into int32: exact, so ORT's default u8s8 kernels are right.
- **AVX2 / AVX-512 without VNNI**: ``vpmaddubsw`` adds *pairs* of u8 x s8 products into int16
  *with saturation*: ``a0*w0 + a1*w1`` is clamped to [-32768, 32767]. Per-channel symmetric INT8
  puts each channel's largest weight at +-127, and 255 * 127 * 2 = 64770, so typical activations
  overflow. ORT documents this ("When and why do I need to try U8U8?", onnxruntime.ai/docs/
  performance/model-optimizations/quantization.html). Measured on the AMD EPYC (AVX2, no VNNI)
  this was fixed on: the test net's INT8 execution against its own Q/DQ semantics had cosine 0.980
  (u8 activations) and 0.960 (s8); ``[255]*8 . [127, 127, -128, -128]*2`` gave -2 instead of -1020.

Where the kernels saturate deploycc sets ORT's session option ``session.x64quantprecision=1``
(``kOrtSessionOptionsAvx2PrecisionMode``): its graph transformer rewrites every constant s8
weight that holds a value outside [-64, 64] as u8 (``w ^ 0x80``, zero point + 128), so MLAS runs
its u8u8 kernels, which widen to int16 before multiplying (``vpmaddwd``, int32 sums): exact, the
same Q/DQ model, slower than u8s8 (ORT's words; not benchmarked here). The alternative, 7-bit
weights (``reduce_range``) where the CPU lacks VNNI, keeps u8s8 speed but makes the Q/DQ model,
its quantization error and the ``--max-miou-drop`` fit depend on the host, and costs accuracy
there (test net, relative L2 error against FP32: 0.0375 -> 0.0477); a TensorRT target's device
model must not change at all. ORT applies the option on every x86 CPU with AVX2 (its test is
"u8u8 and u8s8 dispatch differ"), so deploycc sets it only where the CPU lacks VNNI and a VNNI CPU
keeps its faster u8s8 kernels.

**Unchecked here**: this module was written on an AVX2-only CPU. That the VNNI kernels are exact
(ORT's documentation says so) and that the flags below pick them (mirroring MLAS
``platform.cpp``: the AVX-512 core kernel replaces the AVX-VNNI one unless AVX-512 VNNI is present)
is checked by tests/targets/onnxruntime/test_int8_cpu.py on whichever CPU runs the suite, not on this one.
Non-x86 CPUs (ARM: 32-bit dot products, ORT says they have no such issue) get no option; x86 CPUs
whose flags cannot be read (no /proc/cpuinfo) get it, which is exact on every x86 CPU.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from deploycc.core.errors import UserError

OPTION = "session.x64quantprecision"
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_AVX512_CORE = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


@dataclass(frozen=True)
class Int8Kernels:
    """The choice for one CPU, as recorded in manifests (``to_dict``)."""

    machine: str
    vnni: bool | None  # None: not x86, or its flags were unreadable
    feature: str  # the CPU feature (or its absence) that decided
    x64quantprecision: bool  # whether deploycc sets ORT's u8u8 precision option

    def to_dict(self) -> dict:
        kernels = "u8u8 (session.x64quantprecision=1)" if self.x64quantprecision else "ORT default"
        return {**asdict(self), "kernels": kernels}


def choose(machine: str, flags: set[str] | None) -> Int8Kernels:
    """The kernels for a CPU given its architecture and /proc/cpuinfo flags (None: unreadable)."""
    if machine.lower() not in _X86:
        return Int8Kernels(machine, None, f"{machine}: not x86, 32-bit INT8 dot products", False)
    if flags is None:
        return Int8Kernels(machine, None, "CPU flags unreadable: assumed without VNNI", True)
    vnni_flag = "avx512_vnni" if _AVX512_CORE <= flags else "avx_vnni"
    if vnni_flag in flags:
        return Int8Kernels(machine, True, vnni_flag, False)
    return Int8Kernels(machine, False, "avx2 without avx512_vnni/avx_vnni", True)


@functools.lru_cache(maxsize=1)
def host_int8_kernels() -> Int8Kernels:
    """The choice for this machine (Linux: the first ``flags`` line of /proc/cpuinfo)."""
    return choose(platform.machine(), _cpu_flags(Path("/proc/cpuinfo")))


def apply(so, record: dict | None = None) -> dict:
    """Set ORT's precision option on SessionOptions ``so`` as ``record`` says (default: this host's
    choice); return the record that was applied."""
    record = record or host_int8_kernels().to_dict()
    if record.get("x64quantprecision"):
        so.add_session_config_entry(OPTION, "1")
    return record


def check_runs_here(record: dict | None, where: str) -> None:
    """Refuse an INT8 artifact compiled for ORT's u8s8 kernels (a VNNI CPU, or before this record
    existed) on a CPU whose u8s8 kernels saturate: it would run, and be wrong."""
    host = host_int8_kernels()
    if host.x64quantprecision and not (record or {}).get("x64quantprecision"):
        built = (record or {}).get("feature", "a CPU not recorded")
        raise UserError(
            f"{where} was compiled for ONNX Runtime's u8s8 INT8 kernels ({built}); this CPU "
            f"({host.feature}) would saturate them: rebuild the artifact on this machine"
        )


def _cpu_flags(cpuinfo: Path) -> set[str] | None:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return None
