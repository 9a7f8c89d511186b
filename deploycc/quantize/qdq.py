"""INT8 post-training quantization through ``onnxruntime.quantization``, with cached calibration.

Two steps, both ONNX Runtime's own code (deploycc writes none of the arithmetic):

1. **Ranges**: ``create_calibrator`` (MinMax, Entropy or Percentile) over *every* float tensor of
   the graph, fed one image at a time so memory stays bounded at 1024 x 2048. Every tensor gets a
   range because TensorRT's implicit INT8 needs a scale for each of them (calibration cache), not
   only for the ops ORT quantizes. The ranges (ORT's ``save_tensors_data`` JSON) are a sealed
   entry of the verified cache (``deploycc.core.cache``) under ``$DEPLOYCC_CACHE/calibration/<key>.json``,
   key = sha256(model hash, calibration-set hash, method and its parameters, deploycc's source and
   the CPU): a second build of the same model on the same images reuses them. On read, every range
   must be finite with min <= max and every float tensor of the model must have one; a bad entry
   is reported on one line, removed and calibrated again. One build at a time calibrates a key
   (a file lock per entry).
2. **Q/DQ model**: ``quantize_static`` in QDQ format from those cached ranges (no re-calibration),
   per-channel symmetric INT8 weights, INT8 (symmetric, for TensorRT) or UINT8 (for ORT's CPU
   kernels) activations, minus the excluded nodes (sensitivity, speed placement).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from deploycc.core.cache import JsonCache, cache_home, environment, finite
from deploycc.core.errors import UserError
from deploycc.core.metadata import model_sha256
from deploycc.core.scratch import scratch_dir
from deploycc.quantize.calibration import CalibrationSet

METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class QuantConfig:
    method: str = "minmax"
    per_channel: bool = True
    symmetric: bool = True  # activations: zero point 0 (TensorRT) or not
    activation_type: str = "int8"  # int8 | uint8
    percentile: float = 99.999
    op_types: tuple[str, ...] | None = None  # None: everything ORT knows how to quantize
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"--calib-method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.activation_type not in ("int8", "uint8"):
            raise UserError(f"quantize.activation_type {self.activation_type!r}: int8 or uint8")

    def calibration_params(self) -> dict:
        return {"method": self.method, "percentile": self.percentile if self.method == "percentile" else None}


@dataclass
class Ranges:
    """Per-tensor (min, max) from calibration, where they are cached, and how they were made."""

    values: dict[str, tuple[float, float]]
    cache_file: Path
    cache_hit: bool
    seconds: float
    key: str
    tensors: dict | None = None  # ORT's TensorsData JSON, which quantize_static reads back

    def symmetric_scale(self, name: str) -> float:
        """TensorRT's INT8 scale of a tensor: max(|min|, |max|) / 127."""
        lo, hi = self.values[name]
        return max(abs(lo), abs(hi)) / 127.0


@dataclass
class QuantResult:
    fp32: onnx.ModelProto
    qdq: onnx.ModelProto
    ranges: Ranges
    config: QuantConfig
    calibration: dict
    info: dict = field(default_factory=dict)
    verify_feeds: list | None = None  # held-out inputs for the INT8 numerics check (not recorded)
    calibration_set: CalibrationSet | None = None  # the images the ranges came from (the floor recalibrates)

    def manifest(self) -> dict:
        """What the artifact's manifest records: only what decides its bytes (the same inputs give
        the same manifest); how this run got the ranges is in :meth:`log`."""
        return {
            "config": asdict(self.config),
            "calibration": self.calibration,
            "ranges_key": self.ranges.key,
            **self.info,
        }

    def log(self) -> dict:
        """Run-dependent facts for the build log: whether the ranges came from the cache, and how long."""
        return {"ranges_cache_hit": self.ranges.cache_hit, "calibration_seconds": round(self.ranges.seconds, 3)}


def cache_root() -> Path:
    return cache_home() / "calibration"


def ranges_cache() -> JsonCache:
    return JsonCache(cache_root(), "calibration")


def calibrate(model: onnx.ModelProto, calib: CalibrationSet, config: QuantConfig) -> Ranges:
    """Ranges of every float tensor of ``model`` on ``calib`` (cached by model, data and method)."""
    key = hashlib.sha256(
        json.dumps(
            {"model": model_sha256(model), "data": calib.sha256(), **config.calibration_params(), **environment()},
            sort_keys=True,
        ).encode()
    ).hexdigest()
    cache = ranges_cache()
    start = time.perf_counter()
    with cache.lock(key):  # two builds of one model calibrate it once
        tensors = cache.get(key, _ranges_check)
        hit = tensors is not None
        if not hit:
            tensors = _collect(model, calib, config)
            problem = _ranges_check(tensors)
            if problem:
                raise UserError(
                    f"calibration of the model gave unusable ranges ({problem}): "
                    "check the calibration images and the model's weights"
                )
            cache.put(key, tensors)
    return Ranges(ranges_of(tensors), cache.path(key), hit, time.perf_counter() - start, key, tensors)


def quantize(model: onnx.ModelProto, ranges: Ranges, config: QuantConfig) -> onnx.ModelProto:
    """The Q/DQ model of ``model`` from cached ``ranges`` (ORT ``quantize_static``, QDQ format)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    act = QuantType.QInt8 if config.activation_type == "int8" else QuantType.QUInt8
    extra: dict[str, object] = {"ActivationSymmetric": config.symmetric, "WeightSymmetric": True}
    if config.method == "percentile":
        extra["CalibPercentile"] = config.percentile
    with scratch_dir("quant") as tmp:
        out = Path(tmp) / "model.qdq.onnx"
        calibration_file = Path(tmp) / "ranges.json"  # the verified ranges, for ORT to read back
        calibration_file.write_text(json.dumps(ranges.tensors))
        names = {n.name for n in model.graph.node}
        unknown = [n for n in config.exclude if n not in names]
        if unknown:
            raise UserError(f"quantization exclusions name unknown node(s) {unknown[:3]}")
        with _quiet_root_logger():  # ORT logs "consider pre-processing" warnings on the root logger
            quantize_static(
                model,
                out,
                calibration_data_reader=None,
                calibration_cache_path=calibration_file,
                quant_format=QuantFormat.QDQ,
                per_channel=config.per_channel,
                activation_type=act,
                weight_type=QuantType.QInt8,
                calibrate_method=_method(config.method),
                nodes_to_exclude=list(config.exclude),
                op_types_to_quantize=list(config.op_types) if config.op_types else None,
                extra_options=extra,
            )
        return onnx.load(str(out))


def _collect(model: onnx.ModelProto, calib: CalibrationSet, config: QuantConfig) -> dict:
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    # MinMax's augmented graph returns per-tensor ReduceMin/ReduceMax scalars, and each
    # collect_data call folds its images into the running ranges; histogram methods merge too.
    options = {"percentile": config.percentile} if config.method == "percentile" else {}
    with scratch_dir("calib") as tmp:
        src = Path(tmp) / "model.onnx"
        onnx.save(model, str(src))
        calibrator = create_calibrator(
            src,
            None,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_method(config.method),
            extra_options=options,
        )
        # ORT's histogram calibrators print progress on stdout, which would corrupt --json output.
        with contextlib.redirect_stdout(io.StringIO()):
            for feed in calib.feeds():  # one image per call: histograms merge, memory stays flat
                calibrator.collect_data(_OneShot(feed))
            data = calibrator.compute_data()
        save_tensors_data(data, Path(tmp) / "ranges.json")
        return json.loads((Path(tmp) / "ranges.json").read_text())


def fresh_ranges(model: onnx.ModelProto, calib: CalibrationSet, config: QuantConfig) -> dict[str, tuple[float, float]]:
    """(min, max) per tensor calibrated now, past the cache (what a cache entry must hold)."""
    return ranges_of(_collect(model, calib, config))


def ranges_of(tensors: dict) -> dict[str, tuple[float, float]]:
    """(min, max) per tensor of ORT's TensorsData JSON (``lowest``/``highest`` may be arrays)."""
    from onnxruntime.quantization.calibrate import TensorsData

    data = TensorsData.from_dict(tensors)
    out = {}
    for name, td in data.data.items():
        lo, hi = td.range_value
        out[name] = (float(np.min(lo)), float(np.max(hi)))
    return out


def _ranges_check(tensors) -> str | None:
    """What is wrong with a ranges entry: ORT cannot read it, or a range is not finite with min <= max.
    (Which tensors it covers is sealed by the entry's hash; the key holds the model's hash.)"""
    try:
        values = ranges_of(tensors)
    except Exception as exc:  # ORT's reader raises KeyError/TypeError/ValueError on a bad shape
        return f"not ORT calibration data ({type(exc).__name__})"
    for name, (lo, hi) in values.items():
        if not (finite(lo) and finite(hi)) or lo > hi:
            return f"tensor {name!r} has range ({lo}, {hi}): need finite min <= max"
    return None if values else "no ranges"


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[name]


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _OneShot:
    """A CalibrationDataReader that yields one feed once."""

    def __init__(self, feed: dict):
        self._items = [feed]

    def get_next(self):
        return self._items.pop() if self._items else None

    def __len__(self) -> int:
        return len(self._items)
