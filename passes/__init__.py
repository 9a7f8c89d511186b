"""The pass library: one graph pass per file, registered here by name.

Each pass is a :class:`deploycc.passmanager.DeployPass`; its module docstring states its math and
its exact legality conditions, and it declares what it requires and ensures.

* ``fold-bn`` (``fold_bn.py``): BatchNorm into Conv / ConvTranspose / Gemm, or into a following
  unpadded Conv.
* ``rewrite-dilated`` (``rewrite_dilated.py``): dilated convs a target cannot run, by degenerate
  taps, a zero-inserted kernel or space-to-batch, chosen by target legality and cost.
* ``fuse`` (``fuse.py``): cache-locality-aware fusion groups and tile sizes, written into the graph
  for the backends (TVM compiles each group as one function).

Private helpers: ``_conv`` (conv geometry, auto_pad, initializers), ``_bn_math`` (fold arithmetic),
``_dilated`` (the three dilated-conv rewrites), ``_fusion_cost`` (tile model and partition DP).
"""

from __future__ import annotations

from deploycc.errors import UserError

from .fold_bn import FoldBatchNorm
from .fuse import FuseGroups
from .rewrite_dilated import RewriteDilatedConv

PASSES = {p.name: p for p in (FoldBatchNorm, RewriteDilatedConv, FuseGroups)}


def pass_names() -> list[str]:
    return list(PASSES)


def resolve_passes(names: list[str], option: str = "--passes") -> list[type]:
    """Pass classes for ``names``; an unknown name is a usage error listing the known ones."""
    out = []
    for name in names:
        if name not in PASSES:
            raise UserError(f"{option}: unknown pass {name!r}; known passes: {', '.join(PASSES)}")
        out.append(PASSES[name])
    return out
