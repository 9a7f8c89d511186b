"""The pass library: one graph pass per file, registered here by name.

Each pass is a :class:`deploycc.passmanager.DeployPass`; its module docstring states its math and
its exact legality conditions.
"""

from __future__ import annotations

from deploycc.errors import UserError

from .fold_bn import FoldBatchNorm

PASSES = {p.name: p for p in (FoldBatchNorm,)}


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
