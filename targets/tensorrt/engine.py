"""TensorRT engine building and execution with TensorRT's Python API (runs where TensorRT and an
NVIDIA GPU exist; everywhere else ``unavailable()`` says why in one sentence).

Build: ``trt.Builder`` -> network from ``trt.OnnxParser`` -> builder config with FP16/INT8 flags,
an INT8 calibrator that only *reads* deploycc's calibration cache (TensorRT 8.5 implicit INT8:
no batches, so TensorRT never re-calibrates), per-layer precisions for the layers kept out of INT8,
DLA core with GPU fallback, and a timing cache in the user cache keyed by TensorRT version and GPU
(``timing_cache_path``: read before, written after every build, so builds on one device reuse it).
TensorRT >= 10 builds the Q/DQ model instead (explicit INT8, strongly typed where offered), and
has no Xavier DLA. Run: ``trt.Runtime`` -> engine -> execution context, device buffers through the
CUDA runtime bindings (``cuda.bindings`` or the older ``cuda.cudart``), ``execute_async_v3``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploycc.core.errors import Unavailable, UserError
from deploycc.core.numerics import TensorSpec

from ..backend import Session


def unavailable() -> str | None:
    """None where an engine can be built and run here, else one sentence saying why not."""
    try:
        import tensorrt  # noqa: F401
    except Exception:
        return "TensorRT is not installed here (`import tensorrt` fails)"
    cudart = _cudart()
    if cudart is None:
        return "the CUDA runtime Python bindings (cuda-python) are not installed here"
    try:
        err, count = cudart.cudaGetDeviceCount()
    except Exception:  # the bindings load libcudart lazily; no driver means no usable GPU
        return "this machine has no NVIDIA GPU (the CUDA runtime does not load)"
    if int(err) != 0 or count == 0:
        return "this machine has no NVIDIA GPU"
    return None


def require() -> None:
    reason = unavailable()
    if reason:
        raise Unavailable(f"cannot build or run a TensorRT engine: {reason}")


def trt_version() -> str | None:
    try:
        import tensorrt as trt

        return trt.__version__
    except Exception:
        return None


def gpu_name_and_arch() -> tuple[str, str]:
    cudart = _cudart()
    _err, props = cudart.cudaGetDeviceProperties(0)
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return name.strip("\x00"), f"sm_{props.major}{props.minor}"


@dataclass
class EnginePlan:
    """What to build, as recorded in the bundle's manifest (``tensorrt.plan``)."""

    onnx: str  # file in the bundle to parse
    fp16: bool = False
    int8: str | None = None  # "implicit" (calibration cache) | "explicit" (Q/DQ model) | None
    calib_cache: str | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True
    fp16_layers: tuple[str, ...] = ()
    workspace_mib: int = 1024

    @staticmethod
    def from_dict(d: dict) -> EnginePlan:
        return EnginePlan(**{**d, "fp16_layers": tuple(d.get("fp16_layers", ()))})


def plan_for_installed(plan: EnginePlan) -> EnginePlan:
    """The plan as the installed TensorRT can build it: >= 10 takes INT8 only from the Q/DQ model."""
    import dataclasses

    version = trt_version()
    if plan.int8 and version and int(version.split(".")[0]) >= 10:
        return dataclasses.replace(plan, onnx="model.qdq.onnx", int8="explicit", calib_cache=None)
    return plan


def build_engine(
    folder: Path, plan: EnginePlan, engine_file: str = "model.engine", timing_cache: str = "timing.cache"
) -> dict:
    """Build the engine of ``plan`` from the files in ``folder``; returns build facts for the manifest."""
    require()
    import tensorrt as trt

    major, minor = (int(x) for x in trt.__version__.split(".")[:2])
    if plan.dla_core is not None and (major, minor) > (10, 7):
        raise Unavailable(f"TensorRT {trt.__version__} has no Xavier DLA support (10.7 was the last); use JetPack 5")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, plan, major))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse((folder / plan.onnx).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT's ONNX parser rejects {plan.onnx}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    cache_path = folder / timing_cache
    name, arch = gpu_name_and_arch()
    shared = timing_cache_path(trt.__version__, name, arch)  # reused across builds on this device
    cache = config.create_timing_cache(shared.read_bytes() if shared.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    _precision(trt, config, network, plan, folder, major)
    if plan.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
        if plan.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError(f"TensorRT could not build an engine from {plan.onnx} (see the TensorRT log above)")
    (folder / engine_file).write_bytes(bytes(serialized))
    data = bytes(config.get_timing_cache().serialize())
    cache_path.write_bytes(data)  # the artifact's own copy, as the build used it
    reused = shared.is_file()
    _write_atomic(shared, data)
    return {
        "tensorrt": trt.__version__,
        "gpu": name,
        "gpu_arch": arch,
        "engine": engine_file,
        "timing_cache": timing_cache,
        "shared_timing_cache": str(shared),
        "timing_cache_reused": reused,
        "layers": network.num_layers,
    }


def timing_cache_path(tensorrt_version: str, gpu: str, arch: str) -> Path:
    """The timing cache shared by every build on one device with one TensorRT version, in the user
    cache (``$DEPLOYCC_CACHE/tensorrt-timing/``): TensorRT refuses (or worse, misuses) a cache
    from another version or GPU, so both are in the key."""
    import hashlib
    import os
    import re

    root = Path(os.environ.get("DEPLOYCC_CACHE", Path.home() / ".cache" / "deploycc")) / "tensorrt-timing"
    digest = hashlib.sha256(f"{tensorrt_version}|{gpu}|{arch}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"trt{tensorrt_version}-{arch}-{gpu}").strip("-")[:80]
    return root / f"{slug}-{digest}.cache"


def _write_atomic(path: Path, data: bytes) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _network_flags(trt, plan: EnginePlan, major: int) -> int:
    flags = 0
    if major < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.int8 == "explicit" and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def _precision(trt, config, network, plan: EnginePlan, folder: Path, major: int) -> None:
    if plan.int8 == "explicit":
        return  # types come from the Q/DQ model (strongly typed network)
    if plan.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if plan.int8 == "implicit":
        if major >= 11:
            raise Unavailable(
                f"TensorRT {trt.__version__} removed implicit INT8; build the Q/DQ model (model.qdq.onnx)"
            )
        config.set_flag(trt.BuilderFlag.INT8)
        assert plan.calib_cache is not None, "an implicit-INT8 plan names its calibration cache"
        config.int8_calibrator = _cache_calibrator(trt, (folder / plan.calib_cache).read_bytes())
    if plan.fp16_layers:
        wanted = set(plan.fp16_layers)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.name in wanted:
                layer.precision = trt.float16
                for j in range(layer.num_outputs):
                    layer.set_output_type(j, trt.float16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)


def _cache_calibrator(trt, cache: bytes):
    """An entropy-2 calibrator (the one DLA requires) that only hands TensorRT the cache."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            super().__init__()

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            return None  # no data: TensorRT must use the cache

        def read_calibration_cache(self):
            return cache

        def write_calibration_cache(self, data):
            return None

    return CacheCalibrator()


class TRTSession(Session):
    """A TensorRT engine behind the common Session interface (host numpy in, host numpy out)."""

    def __init__(self, engine_path: Path, inputs: list[TensorSpec], outputs: list[TensorSpec]):
        require()
        import tensorrt as trt

        self._cudart = _cudart()
        self.inputs, self.outputs = inputs, outputs
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise UserError(f"{engine_path}: TensorRT cannot load this engine (built by another TensorRT or GPU?)")
        self._context = self._engine.create_execution_context()
        self._buffers = {}
        for spec in inputs + outputs:
            nbytes = int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
            self._buffers[spec.name] = self._check(self._cudart.cudaMalloc(nbytes))
            self._context.set_tensor_address(spec.name, int(self._buffers[spec.name]))
        self._stream = self._check(self._cudart.cudaStreamCreate())

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        cu = self._cudart
        h2d, d2h = cu.cudaMemcpyKind.cudaMemcpyHostToDevice, cu.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for spec, value in zip(self.inputs, arrays):
            self._check(cu.cudaMemcpy(self._buffers[spec.name], value.ctypes.data, value.nbytes, h2d))
        if not self._context.execute_async_v3(int(self._stream)):
            raise UserError("TensorRT execution failed (execute_async_v3 returned false)")
        self._check(cu.cudaStreamSynchronize(self._stream))
        outs = []
        for spec in self.outputs:
            host = np.empty(spec.shape, dtype=spec.dtype)
            self._check(cu.cudaMemcpy(host.ctypes.data, self._buffers[spec.name], host.nbytes, d2h))
            outs.append(host)
        return outs

    def _check(self, result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise UserError(f"CUDA runtime error {err}")
        return rest[0] if rest else None

    def __del__(self):
        cu = getattr(self, "_cudart", None)
        if cu is None:  # __init__ failed before loading the CUDA runtime: no buffer was allocated
            return
        for ptr in getattr(self, "_buffers", {}).values():
            cu.cudaFree(ptr)


def _cudart():
    try:
        from cuda.bindings import runtime as cudart

        return cudart
    except Exception:
        pass
    try:
        from cuda import cudart  # cuda-python < 12.6 (what JetPack 5 users have)

        return cudart
    except Exception:
        return None
