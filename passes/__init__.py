"""deploycc.passes: the graph passes, one per file, and the infrastructure that runs and checks them.

District of the pipeline: the ``passes`` stage of ``build`` and ``optimize``. May import
``deploycc.targets`` (a pass reads its target's legality rules and hardware figures),
``deploycc.core``; nothing above (pipeline, quantize, verify, lut, fleet, ci, cli).

Passes (each module docstring states its math and exact legality conditions):

* ``fold-bn`` (``fold_bn.py``): BatchNorm into Conv / ConvTranspose / Gemm, or into a following
  unpadded Conv.
* ``rewrite-dilated`` (``rewrite_dilated.py``): dilated convs a target cannot run, by degenerate
  taps, a zero-inserted kernel or space-to-batch, chosen by target legality and cost.
* ``fuse`` (``fuse.py``): cache-locality-aware fusion groups and tile sizes, written into the graph
  for the backends (TVM compiles each group as one function).

Infrastructure: ``base`` (:class:`DeployPass`, :class:`PassContext`, :class:`PassLog`),
``manager`` (:func:`run_passes`: invariants and numerics after every pass), ``oracle`` (the strict
numerical oracle), ``registry`` (passes by name). Private helpers: ``_conv`` (conv geometry read
from onnx_ir, initializers), ``_bn_math`` (fold arithmetic), ``_dilated`` (the three dilated-conv
rewrites), ``_fusion_cost`` (tile model and partition DP). See docs/passes.md.
"""

from __future__ import annotations

from .base import DeployPass, PassContext, PassFailed, PassLog
from .fold_bn import FoldBatchNorm
from .fuse import FuseGroups
from .manager import PassRecord, check_invariants, name_nodes, op_histogram, run_passes
from .registry import PASSES, check_pass_options, pass_names, register_pass, resolve_passes
from .rewrite_dilated import RewriteDilatedConv

__all__ = [
    "PASSES",
    "DeployPass",
    "FoldBatchNorm",
    "FuseGroups",
    "PassContext",
    "PassFailed",
    "PassLog",
    "PassRecord",
    "RewriteDilatedConv",
    "check_invariants",
    "check_pass_options",
    "name_nodes",
    "op_histogram",
    "pass_names",
    "register_pass",
    "resolve_passes",
    "run_passes",
]
