"""deploycc.targets: the hardware, as data, and one package per compiler.

One TOML file per target (hardware figures, legality rules, backend settings; ``target``
loads and validates it into a :class:`Target`). One package per compiler: ``tvm``, ``tensorrt``,
``onnxruntime`` (with this CPU's INT8 facts) and ``nnapi``; none imports another. Shared by all of
them, at this level: the backend contract and registry (``backend``, which also reaches the host's
ONNX runtime by name for proxy sessions), the legality rules of accelerators (``legality``), the
per-node placement report (``placement``) and the FP16 simulation of device-only FP16 graphs
(``fp16_sim``). Adding a target is adding a file: docs/targets.md.

May import ``deploycc.core`` only (a backend receives the quantization result and pass plan as
data written into the graph or the compile options, never by importing an earlier stage).
"""

from __future__ import annotations

from .target import (
    ELEMENT_BYTES,
    FALLBACK_FIGURES,
    TARGET_DIR,
    HardwareFigures,
    Target,
    figures_for,
    list_targets,
    load_target,
    target_files,
)

__all__ = [
    "ELEMENT_BYTES",
    "FALLBACK_FIGURES",
    "TARGET_DIR",
    "HardwareFigures",
    "Target",
    "figures_for",
    "list_targets",
    "load_target",
    "target_files",
]
