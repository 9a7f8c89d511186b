"""What a pass is: the base class every deploycc pass subclasses, the context it is given and the
log it keeps of each rewrite and refusal.

A pass is an ``onnx_ir`` in-place pass (``requires`` -> ``call`` -> ``ensures``; onnx_ir wraps
their failures in Precondition/PostconditionError and checks the in-place declaration). It
declares in words what it requires and ensures (``requires_doc`` / ``ensures_doc``), implements
the checks it can make, and returns a truthful ``modified``. The manager (``manager.py``) runs it
and proves it kept the model intact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import onnx_ir as ir

from deploycc.core.errors import GateFailed
from deploycc.targets import Target


class PassFailed(GateFailed):
    """A pass broke an invariant or changed the numerics."""


@dataclass
class PassContext:
    """What a pass may know about the build: the target's data and the user's options."""

    target: Target | None = None  # None: no target rules, the cpu target's figures
    force: bool = False
    options: dict = field(default_factory=dict)


@dataclass
class PassLog:
    """What one pass did: each rewrite (with the nodes it touched) and each refusal with its reason."""

    rewrites: list[dict] = field(default_factory=list)
    refusals: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def rewrite(self, nodes: list[str], detail: str, **extra) -> None:
        self.rewrites.append({"nodes": list(nodes), "detail": detail, **extra})

    def refuse(self, node: str, reason: str, **extra) -> None:
        self.refusals.append({"node": node, "reason": reason, **extra})


class DeployPass(ir.passes.InPlacePass):
    """Base class of deploycc passes. Subclasses set ``name``, ``summary``, ``requires_doc`` and
    ``ensures_doc`` and implement ``call`` (and ``requires`` / ``ensures`` where checkable)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    requires_doc: ClassVar[tuple[str, ...]] = ()
    ensures_doc: ClassVar[tuple[str, ...]] = ()
    # ``--pass-option`` keys the pass reads, each with a check of its value (True when it is valid)
    # and what a valid value is; an unknown key or a bad value is refused before any pass runs.
    option_checks: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {}

    def __init__(self, ctx: PassContext | None = None):
        super().__init__()
        self.ctx = ctx or PassContext()
        self.log = PassLog()

    def requires(self, model: ir.Model) -> None:
        """Every pass names the nodes it rewrites or refuses, so every node must have a unique name
        (``run_passes`` names unnamed nodes before the first pass)."""
        names = [n.name for n in model.graph]
        if not all(names) or len(set(names)) != len(names):
            raise ir.passes.PreconditionError("every node needs a unique name (run it through run_passes)")

    @classmethod
    def describe(cls) -> dict:
        return {
            "name": cls.name,
            "summary": cls.summary,
            "requires": list(cls.requires_doc),
            "ensures": list(cls.ensures_doc),
        }
