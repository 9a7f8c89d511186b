"""deploycc.targets: the hardware, as data, and one adapter per compiler.

One TOML file per target (hardware figures, legality rules, backend settings; ``target``
loads and validates it into a :class:`Target`), one backend adapter per compiler (``tvm_backend``,
``ort_backend``, ``tensorrt_backend`` with ``trt_engine``, ``nnapi_backend``; the contract and
registry are in ``backend``), and the knowledge about devices that is not a compiler: legality
rules of accelerators (``legality``), the per-node placement report (``placement``), the
TensorRT calibration-cache format (``trt_calib_cache``) and which ONNX Runtime INT8 kernels are
exact on this host's CPU (``int8_cpu``). Adding a target is adding a file:
docs/targets.md.

May import ``deploycc.core`` only (a backend receives the quantization result and pass plan as
data written into the graph or the compile options, never by importing an earlier stage).
"""

from __future__ import annotations

from .target import (ELEMENT_BYTES, FALLBACK_FIGURES, TARGET_DIR, HardwareFigures, Target, figures_for, list_targets,
                     load_target, target_files)

__all__ = ["ELEMENT_BYTES", "FALLBACK_FIGURES", "TARGET_DIR", "HardwareFigures", "Target", "figures_for",
           "list_targets", "load_target", "target_files"]
