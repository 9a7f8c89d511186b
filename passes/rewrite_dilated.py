"""rewrite-dilated: replace dilated 2-D convs the target cannot run by an exact equivalent.

The three rewrites (math and exactness in ``_dilated``; docs/passes.md, "rewrite-dilated"):
degenerate taps (dilation >= the spatial size: the conv reduces to 1 x k, k x 1 or 1 x 1),
zero-inserted kernel (k' = (k - 1) d + 1, any stride, MACs x (k'/k) per axis; also partially,
k' = (k - 1) m + 1 at dilation d/m for each m dividing d) and space-to-batch (stride 1: pad to a
multiple of d, split into d*d phases, dense conv, merge, slice).

Choice, per Conv with a dilation > 1:
  * the target's ``[legality.conv]`` rules (``deploycc.targets.legality``) give each candidate's
    violations; ``[legality] native_dilated_conv`` (default true) says whether a legal dilated
    conv runs as is. A native target keeps a legal dilated conv unless ``--force``; a non-native
    target rewrites every one.
  * candidates are ranked by tier, then by estimated time: tier 0 = the resulting conv is legal
    and every op the rewrite adds has an accelerator layer (``[legality] ops``; or the target has
    no accelerator rules); tier 1 = the conv is legal but the rewrite adds data-movement ops
    (Pad, SpaceToDepth, ...) the accelerator lacks (or, without an ``ops`` list, that the conv
    rules do not cover), so they run on the fallback unit; tier 2 = still illegal. Estimated
    time = MACs / (peak ops / 2) + bytes moved / DRAM bandwidth, from the target's figures.
  * if the best candidate is tier 2, no exact rewrite makes the conv legal: it is left unchanged
    and the trace says why for every candidate (e.g. a stride-2 rate-31 conv: 31 is prime, so
    zero-insertion needs 63 taps, and space-to-batch needs stride 1).
  * ``--pass-option rewrite-dilated.method=<keep|degenerate|zero-insert|space-to-batch>`` forces a
    method (refused where it is not exact for that conv; zero-insert then means full insertion).
A kept dilated conv with auto_pad SAME_* gets explicit pads (ONNX Runtime refuses it otherwise).
Legal only for 2-D convs with a constant weight; the per-conv outcome and the target-legality
summary go to the trace (``stats.convs``, ``stats.legality``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import onnx_ir as ir

from deploycc.core.conv import ConvGeometry
from deploycc.core.errors import UserError
from deploycc.targets import figures_for
from deploycc.targets.legality import conv_violations

from ._conv import conv_geometry, str_attr
from ._dilated import Candidate, candidates
from .base import DeployPass

METHODS = ("keep", "degenerate", "zero-insert", "space-to-batch")


class RewriteDilatedConv(DeployPass):
    name = "rewrite-dilated"
    summary = "rewrite dilated convs the target cannot run: degenerate taps, zero-inserted kernel or space-to-batch"
    requires_doc = ("convs have constant weights; static input shapes for degenerate taps and space-to-batch",)
    ensures_doc = (
        "every dilated Conv left is legal for the target, kept on purpose, or refused with a reason",
        "no kept dilated Conv has auto_pad SAME_* (resolved to explicit pads)",
    )
    option_checks: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]] = {
        "rewrite-dilated.method": (lambda v: v in (*METHODS, "auto"), f"one of auto, {', '.join(METHODS)}")
    }

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        self._settings()
        modified, outcomes = False, []
        for conv in [n for n in model.graph if n.op_type == "Conv" and n.domain == ""]:
            outcome = self._handle(model.graph, conv)
            if outcome is not None:
                outcomes.append(outcome)
                modified |= bool(outcome.get("rewritten_nodes"))
        self.log.stats["convs"] = outcomes
        self.log.stats["legality"] = self._summary(outcomes)
        return ir.passes.PassResult(model, modified=modified)

    def ensures(self, model: ir.Model) -> None:
        outcomes = {o["node"]: o for o in self.log.stats.get("convs", [])}
        for node in model.graph:
            if node.op_type != "Conv" or not any(d > 1 for d in _dilations(node)):
                continue
            if node.name not in outcomes:
                raise ir.passes.PostconditionError(f"dilated Conv {node.name!r} was neither handled nor refused")
            if outcomes[node.name]["action"] == "kept" and str_attr(node, "auto_pad", "NOTSET").startswith("SAME"):
                raise ir.passes.PostconditionError(f"kept dilated Conv {node.name!r} still has auto_pad SAME_*")

    def _settings(self) -> None:
        target = self.ctx.target
        legality = dict(target.legality) if target else {}
        self.rules = dict(legality.get("conv", {}))
        self.native = bool(legality.get("native_dilated_conv", True))
        self.accelerator = legality.get("accelerator")
        self.fallback = legality.get("fallback")
        self.ops = legality.get("ops")  # op types the accelerator implements (None: unknown)
        hw = figures_for(target)
        self.peak, self.bandwidth = hw.peak_ops, hw.dram_bandwidth
        self.elem = hw.bytes_per_element or 4
        self.method = str(self.ctx.options.get("rewrite-dilated.method", "auto"))
        if self.method not in (*METHODS, "auto"):
            raise UserError(
                f"--pass-option rewrite-dilated.method={self.method}: expected one of auto, {', '.join(METHODS)}"
            )

    def _handle(self, graph: ir.Graph, conv: ir.Node) -> dict | None:
        if not any(d > 1 for d in _dilations(conv)):
            return None
        geom, why = conv_geometry(conv)
        if geom is None or geom.rank != 2 or conv.inputs[1].const_value is None:
            why = why or (
                "only 2-D convs are handled"
                if geom is not None and geom.rank != 2
                else "the weight is not a constant initializer"
            )
            self.log.refuse(conv.name, why)
            return {"node": conv.name, "action": "refused", "reason": why, "violations_before": None}
        cands = [self._score(c) for c in candidates(conv, geom, self.elem)]
        keep = cands[0]
        outcome = {
            "node": conv.name,
            **_describe(geom, str_attr(conv, "auto_pad", "NOTSET")),
            "violations_before": keep.violations,
            "candidates": [c.to_dict() for c in cands],
        }
        chosen, reason = self._choose(cands)
        if chosen is None:
            self.log.refuse(conv.name, reason)
            return outcome | {"action": "refused", "reason": reason, "violations_after": keep.violations}
        nodes = chosen.apply(graph, conv)
        if chosen.method == "keep":
            if nodes:
                self.log.rewrite(nodes, "dilated Conv kept; auto_pad resolved to explicit pads")
            return outcome | {
                "action": "kept",
                "reason": reason,
                "violations_after": keep.violations,
                "rewritten_nodes": nodes,
            }
        factor = {"factor": list(chosen.factor)} if chosen.factor else {}
        self.log.rewrite(
            nodes,
            f"dilated Conv -> {chosen.method}",
            method=chosen.method,
            **factor,
            macs_before=keep.macs,
            macs_after=chosen.macs,
            extra_ops=list(chosen.extra_ops),
        )
        return (
            outcome
            | factor
            | {
                "action": "rewritten",
                "method": chosen.method,
                "reason": reason,
                "violations_after": chosen.violations,
                "extra_ops": list(chosen.extra_ops),
                "fallback_ops": list(chosen.fallback_ops),
                "rewritten_nodes": nodes,
            }
        )

    def _score(self, c: Candidate) -> Candidate:
        if not c.ok:
            return c
        g = c.geom
        c.violations = conv_violations(g, self.rules)
        if not self.native and any(d > 1 and k > 1 for d, k in zip(g.dilations, g.kernel)):
            c.violations.append(f"dilation {list(g.dilations)}: the target runs no dilated conv natively")
        on_accelerator = bool(self.rules)
        off = [op for op in c.extra_ops if self.ops is None or op not in self.ops] if on_accelerator else []
        c.fallback_ops = tuple(dict.fromkeys(off))
        c.tier = 2 if c.violations else (1 if off else 0)
        if c.macs is not None and c.bytes is not None:
            c.seconds = c.macs / (self.peak / 2) + c.bytes / self.bandwidth
        else:  # without static shapes only the kernel growth is known
            c.seconds = float(sum(g.kernel)) / 1e9
        return c

    def _choose(self, cands: list[Candidate]) -> tuple[Candidate | None, str]:
        keep = cands[0]
        if self.method != "auto":
            c = next(c for c in cands if c.method == self.method)  # zero-insert: the full insertion
            return (
                (c, f"method {self.method} requested") if c.ok else (None, f"{self.method} requested but {c.why_not}")
            )
        if self.native and not keep.violations and not self.ctx.force:
            return keep, "legal as is and the target runs dilated convs natively"
        options = [c for c in cands if c.ok and (c.method != "keep" or (self.native and not self.ctx.force))]
        if not options:
            return None, "no exact rewrite applies: " + _why_each(cands)
        best = min(options, key=lambda c: (c.tier, c.seconds))
        if best.tier == 2:
            return None, "no exact rewrite makes it legal: " + _why_each(cands)
        return best, _why_chosen(best, keep, self.fallback, self.ops is not None)

    def _summary(self, outcomes: list[dict]) -> dict:
        illegal = [o for o in outcomes if o.get("violations_after")]
        rewritten: dict[str, int] = {}
        for o in outcomes:
            if o.get("action") == "rewritten":
                rewritten[o["method"]] = rewritten.get(o["method"], 0) + 1
        extra = [o["node"] for o in outcomes if o.get("fallback_ops")]
        unit = self.accelerator or "the target"
        if not self.rules:
            verdict = "the target has no conv legality rules"
        elif illegal:
            verdict = f"{len(illegal)} dilated conv(s) stay illegal for {unit}: " + "; ".join(
                f"{o['node']}: {o['violations_after'][0]}" for o in illegal[:6]
            )
        else:
            verdict = f"every dilated conv is legal for {unit} after the pass"
        if extra:
            how = "which have no layer on" if self.ops is not None else "outside the conv rules; they may not run on"
            verdict += (
                f"; {len(extra)} rewrite(s) added data-movement ops {how} {unit} and run on "
                f"{self.fallback or 'the fallback unit'}"
            )
        return {
            "accelerator": self.accelerator,
            "fallback": self.fallback,
            "rules": bool(self.rules),
            "native_dilated_conv": self.native,
            "dilated_convs": len(outcomes),
            "legal_before": sum(1 for o in outcomes if o.get("violations_before") == []),
            "rewritten": rewritten,
            "still_illegal": [o["node"] for o in illegal],
            "needs_fallback_ops": extra,
            "verdict": verdict,
        }


def _dilations(node: ir.Node) -> tuple[int, ...]:
    attr = node.attributes.get("dilations")
    return tuple(int(v) for v in attr.value) if attr is not None else ()


def _describe(g: ConvGeometry, auto_pad: str) -> dict:
    return {
        "kernel": list(g.kernel),
        "strides": list(g.strides),
        "dilations": list(g.dilations),
        "pads": list(g.pads),
        "auto_pad": auto_pad,
        "group": g.group,
        "input_shape": list(g.in_shape) if g.in_shape else None,
    }


def _why_each(cands: list[Candidate]) -> str:
    parts = []
    for c in cands:
        name = f"{c.method} x{c.factor[0]}x{c.factor[1]}" if c.factor else c.method
        parts.append(f"{name}: {c.violations[0] if c.ok and c.violations else (c.why_not or 'legal')}")
    return "; ".join(parts)


def _why_chosen(best: Candidate, keep: Candidate, fallback, ops_known: bool) -> str:
    name = (
        f"{best.method} (factor {best.factor[0]}x{best.factor[1]}, kernel {list(best.geom.kernel)}, dilation "
        f"{list(best.geom.dilations)})"
        if best.factor
        else best.method
    )
    base = "legal as is" if best.method == "keep" else f"{name} is the cheapest legal rewrite"
    if keep.violations and best.method != "keep":
        base += f" (as is: {keep.violations[0]})"
    if best.tier == 1:
        how = "have no accelerator layer ([legality] ops)" if ops_known else "are outside the conv rules"
        base += f"; its {', '.join(best.fallback_ops)} ops {how} and run on {fallback or 'the fallback unit'}"
    return base
