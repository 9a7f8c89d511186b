"""CUDA kernels of a TVM build, compiled ahead of time for the target GPU (e.g. the Xavier's sm_72).

TVM 0.27 stores its CUDA kernels in the exported library as CUDA C source, which TVM's CUDA
runtime compiles when the library is loaded (``tvm_callback_cuda_compile``, NVRTC or nvcc on the
device). deploycc also compiles that source here, for the target's ``arch``, with NVRTC, and ships
the cubin beside the library (``kernels.<arch>.cubin``, keyed by the source's sha256). That proves
the kernels compile for the target's architecture before anything reaches the device, and on the
device :func:`install_kernel_cache` hands TVM the prebuilt cubin instead of compiling again.

The CUDA 13 toolkit on this machine cannot target Volta (sm_70/sm_72: ``nvcc --list-gpu-arch``
starts at compute_75), so NVRTC comes from the CUDA 12.9 wheels (``cuda-bindings<13``,
``nvidia-cuda-nvrtc-cu12``, and the headers of ``nvidia-cuda-runtime-cu12``,
``nvidia-cuda-cccl-cu12`` and ``nvidia-cuda-nvcc-cu12``; see ``requirements-cuda.txt``). The
last one holds ``crt/``: a float16 build's tensor-core kernels include ``mma.h``, which includes
``crt/mma.h`` (without it NVRTC stopped the V100's lat_small build). Without them the library is
still built (the device compiles its kernels itself) and the manifest says the kernels were not
precompiled, and why. Kernels that NVRTC refuses with every header present would fail on the
device too: the build fails with NVRTC's first error (exit 1), not with a traceback.
"""

from __future__ import annotations

import hashlib
import os
import struct
from contextlib import contextmanager
from pathlib import Path

from deploycc.core.errors import GateFailed

EM_CUDA = 190
HEADER_WHEELS = "nvidia-cuda-runtime-cu12, nvidia-cuda-cccl-cu12, nvidia-cuda-nvcc-cu12"


def cuda_source(executable) -> str:
    """The CUDA C source of every kernel in a ``tvm.compile`` result."""
    for host in executable.mod.imports:
        for dev in host.imports:
            if dev.kind == "cuda":
                return dev.inspect_source("cuda")
    return ""


def nvrtc_unavailable(arch: str) -> str | None:
    try:
        from cuda.bindings import nvrtc
    except Exception:
        return "NVRTC is not installed (pip install -r requirements-cuda.txt)"
    _err, archs = nvrtc.nvrtcGetSupportedArchs()
    number = int(arch.removeprefix("sm_").rstrip("a"))
    if number not in list(archs):
        _, major, minor = nvrtc.nvrtcVersion()
        return f"NVRTC {major}.{minor} cannot generate {arch} code"
    if _header_dirs() is None:
        return f"the CUDA 12 headers are not installed ({HEADER_WHEELS}: pip install -r requirements-cuda.txt)"
    return None


def precompile(executable, arch: str, workdir: Path) -> tuple[list[str], dict]:
    """(files, facts): ``kernels.<arch>.cubin`` compiled with NVRTC, or the reason it was not."""
    return precompile_source(cuda_source(executable), arch, workdir)


def precompile_source(source: str, arch: str, workdir: Path) -> tuple[list[str], dict]:
    """:func:`precompile` of CUDA C ``source``."""
    facts = {
        "arch": arch,
        "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
        "runtime": "TVM's CUDA runtime loads the cubin if it matches, else compiles the source on the device",
    }
    reason = nvrtc_unavailable(arch)
    if reason:
        return [], facts | {"precompiled": False, "reason": reason}
    import tvm.support.nvcc as nvcc
    from cuda.bindings import nvrtc

    dirs = _header_dirs()
    assert dirs is not None, "nvrtc_unavailable found the CUDA headers"
    _, major, minor = nvrtc.nvrtcVersion()
    try:
        with _cuda_path(dirs):
            cubin = bytes(nvcc.compile_cuda(source, target_format="cubin", arch=arch, compiler="nvrtc"))
    except RuntimeError as exc:
        raise GateFailed(
            f"TVM's CUDA kernels do not compile for {arch} (NVRTC {major}.{minor}): {first_nvrtc_error(str(exc))}"
        ) from None
    name = f"kernels.{arch}.cubin"
    (workdir / name).write_bytes(cubin)
    return [name], facts | {
        "precompiled": True,
        "cubin": name,
        "nvrtc": f"{major}.{minor}",
        "cubin_arch": cubin_arch(cubin),
    }


def first_nvrtc_error(log: str) -> str:
    """The first error line of an NVRTC log (``file(line): error: ...``), or its first line."""
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line and "NVRTC compilation failed" not in line]
    return (errors or lines or ["no log"])[0]


def cubin_arch(data: bytes) -> str:
    """``sm_XX`` of a cubin (an ELF for EM_CUDA whose e_flags carry the SM number)."""
    if data[:4] != b"\x7fELF" or struct.unpack_from("<H", data, 18)[0] != EM_CUDA:
        raise ValueError("not a CUDA ELF (cubin)")
    flags = struct.unpack_from("<I", data, 48)[0]
    return f"sm_{flags & 0xFF}"


def install_kernel_cache(folder: Path, facts: dict) -> None:
    """On the device: answer TVM's kernel compile with the shipped cubin when the source matches."""
    if not facts.get("precompiled"):
        return
    import tvm
    import tvm.support.nvcc as nvcc
    import tvm_ffi

    cubin = (folder / facts["cubin"]).read_bytes()
    device_arch = "sm_" + tvm.cuda(0).compute_version.replace(".", "")

    def compile_or_reuse(code):
        text = code if isinstance(code, str) else bytes(code).decode()
        if device_arch == facts["arch"] and hashlib.sha256(text.encode()).hexdigest() == facts["source_sha256"]:
            return bytearray(cubin)
        return nvcc.tvm_callback_cuda_compile(code)

    tvm_ffi.register_global_func("tvm_callback_cuda_compile", compile_or_reuse, override=True)


def _header_dirs() -> list[str] | None:
    """The include folders of the three header wheels, or None if one is missing (or lacks
    what the kernels include: ``cuda_runtime.h``, ``cuda/std/``, ``crt/mma.h``)."""
    try:
        import nvidia.cuda_cccl
        import nvidia.cuda_nvcc
        import nvidia.cuda_runtime
    except ImportError:
        return None
    wheels = (nvidia.cuda_runtime, nvidia.cuda_cccl, nvidia.cuda_nvcc)
    dirs = [Path(next(iter(m.__path__))) / "include" for m in wheels]
    needed = ("cuda_runtime.h", "cuda/std", "crt/mma.h")
    return [str(d) for d in dirs] if all((d / n).exists() for d, n in zip(dirs, needed, strict=True)) else None


@contextmanager
def _cuda_path(include_dirs: list[str]):
    """A CUDA_PATH whose include/ unites the CUDA 12 wheels' headers (TVM's NVRTC call reads it):
    one link per entry, added where missing (an older union may lack a wheel's entries)."""
    root = Path(os.environ.get("DEPLOYCC_CACHE", Path.home() / ".cache" / "deploycc")) / "cuda12-headers"
    include = root / "include"
    include.mkdir(parents=True, exist_ok=True)
    for d in include_dirs:
        for entry in Path(d).iterdir():
            link = include / entry.name
            if not link.exists() and not entry.name.startswith("__"):
                try:
                    link.symlink_to(entry)
                except FileExistsError:  # another build made it first
                    pass
    old = os.environ.get("CUDA_PATH")
    os.environ["CUDA_PATH"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("CUDA_PATH", None)
        else:
            os.environ["CUDA_PATH"] = old
