"""A second opinion on the reference: ``onnx.reference`` (ONNX's own evaluator) beside ONNX Runtime.

Every artifact is checked against ONNX Runtime; where ONNX Runtime itself is wrong (ONNX's backend
cases show ORT 1.32 wrong on Resize downsampling with ``align_corners``), an artifact that agrees
with it would pass unseen. So where the graph is small enough for the pure-NumPy evaluator
(``MAX_MACS`` multiply-accumulates and ``MAX_NODES`` nodes), the reference outputs are computed a
second time by ``onnx.reference.ReferenceEvaluator`` and compared; a disagreement fails the
verification, since the reference is then in doubt. Larger graphs record the check as not run,
with the reason. (``onnx.reference`` has gaps of its own: it fails on grouped ConvTranspose; an
evaluator error is recorded as not run, with the error, never as passed.)
"""

from __future__ import annotations

import numpy as np
import onnx

from .errors import first_line
from .macs import conv_macs
from .numerics import Tolerance, compare_all
from .verdict import FAILED, PASSED, not_run

MAX_MACS = 1_000_000  # the evaluator is pure NumPy: ~1 s for 2 million MACs here
MAX_NODES = 200
TOLERANCE = Tolerance(atol_rel=1e-4, rtol=1e-4)


def second_opinion(model: onnx.ModelProto, feeds: dict, ort_outputs: list[np.ndarray]) -> dict:
    """passed / failed / not_run: ``onnx.reference`` against ONNX Runtime's outputs of ``model``."""
    macs, nodes = conv_macs(model), len(model.graph.node)
    if macs > MAX_MACS or nodes > MAX_NODES:
        return not_run(
            f"graph too large for onnx.reference ({macs:,} conv MACs, {nodes} nodes; limits "
            f"{MAX_MACS:,} and {MAX_NODES})",
            "a smaller graph (the check runs on small graphs only)",
        )
    try:
        from onnx.reference import ReferenceEvaluator

        outputs = ReferenceEvaluator(model).run(None, feeds)
    except Exception as exc:
        return not_run(
            f"onnx.reference could not evaluate the graph: {first_line(exc, with_type=True)}",
            "an operator onnx.reference implements",
        )
    names = [o.name for o in model.graph.output]
    stats = compare_all(names, [np.asarray(o) for o in outputs], ort_outputs, TOLERANCE)
    ok = all(s.ok for s in stats)
    return {
        "status": PASSED if ok else FAILED,
        "reference": "onnx.reference.ReferenceEvaluator",
        "compared_with": "onnxruntime (the reference of the numerics check)",
        "outputs": [s.to_dict() for s in stats],
    }
