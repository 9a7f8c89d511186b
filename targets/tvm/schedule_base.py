"""What every default CPU schedule rule of the TVM adapter shares: the CPU facts (vector lanes,
on-chip bytes), the rule base class, and the loop and block queries the rules are written with.

Split from ``cpu_schedules`` so that a rule in a module of its own (``fused_chain``) and the rule
list in ``cpu_schedules`` both stand on it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

DATA_PAR, REDUCE = 0, 2
ACCUMULATORS = 12  # vector registers kept for the accumulator tile (16 on AVX2/NEON)


@dataclass(frozen=True)
class CPUFacts:
    lanes: int = 8  # fp32 lanes per vector register
    onchip_bytes: int = 1 << 20  # per-core cache the row slab should fit in

    @staticmethod
    def of(target, onchip_bytes: int | None = None) -> CPUFacts:
        """Lanes from the target's features (``llvm_get_vector_width`` says 512 bits for znver3,
        which has 256-bit AVX2, so it is not trusted)."""
        from tvm.target.codegen import llvm_cpu_has_features

        lanes = 4  # SSE, NEON and anything unknown: 128-bit vectors
        for feature, width in (("avx512f", 16), ("avx2", 8), ("avx", 8)):
            if llvm_cpu_has_features([feature], target):
                lanes = width
                break
        return CPUFacts(lanes, onchip_bytes or 1 << 20)


def _base():
    from tvm.s_tir.dlight.cpu.base import CPUScheduleRule

    return CPUScheduleRule


def _divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` not above ``limit`` (tiles that divide need no predicate)."""
    return max(d for d in range(1, max(1, min(n, limit)) + 1) if n % d == 0)


def _extent(sch, loop) -> int:
    return int(sch.get(loop).extent)


def _block_kinds(sch, block) -> list[int] | None:
    """Iter kinds of ``block`` if each of its loops binds exactly one iter var in order."""
    from tvm_ffi import get_global_func

    stmt = sch.get(block)
    loops = sch.get_loops(block)
    if len(loops) != len(stmt.iter_vars):
        return None
    for loop, value in zip(loops, get_global_func("s_tir.schedule.GetSBlockRealize")(sch, block).iter_values):
        if not value.same_as(sch.get(loop).loop_var):
            return None
    return [int(iv.iter_type) for iv in stmt.iter_vars]


def _reads_depend_on_channel(stmt) -> bool:
    """Whether the block's data input (its first read) is indexed by the output channel."""
    from tvm.tirx.analysis import undefined_vars

    c_var = stmt.iter_vars[1].var
    return any(v.same_as(c_var) for rng in stmt.reads[0].region for v in undefined_vars(rng.min))


def _channels_sharing_input(stmt) -> int:
    """How many consecutive output channels read the same input: all of them for a plain conv,
    the output channels of one group for a grouped conv, 1 for depthwise conv and pooling."""
    if not _reads_depend_on_channel(stmt):
        return int(stmt.iter_vars[1].dom.extent)
    if len(stmt.reads) < 2 or len(stmt.reads[1].source.shape) != 4 or len(stmt.reads[0].source.shape) != 4:
        return 1
    cout, cin_g = (int(d) for d in stmt.reads[1].source.shape[:2])
    cin = int(stmt.reads[0].source.shape[1])
    groups = cin // cin_g if cin_g and cin % cin_g == 0 else 0
    return cout // groups if groups and cout % groups == 0 else 1


def _coefficient(expr, var) -> int:
    """The constant coefficient of ``var`` in the linear index ``expr`` (1 if not linear)."""
    import tvm
    from tvm.sym.pattern import detect_linear_equation

    coeff = detect_linear_equation(expr, [var])
    return int(coeff[0]) if len(coeff) == 2 and isinstance(coeff[0], tvm.tirx.IntImm) else 1


# TVM's CPUScheduleRule, imported when this module is (mypy cannot follow a base made by a call).
class _Rule(_base()):  # type: ignore[misc]
    """One CPU rule: ``schedule_func`` gets a fresh schedule of a PrimFunc for this target and
    returns it scheduled, or None to leave the PrimFunc to the next rule."""

    def __init__(self, facts: CPUFacts):
        self.facts = facts

    def apply(self, func, target, tunable):
        from tvm import s_tir, tirx

        if not isinstance(func, tirx.PrimFunc) or not self.is_target_available(target):
            return None
        return self.schedule_func(s_tir.Schedule(func), tunable)


class _WindowRule(_Rule):
    """A rule that matches one window reduction (``_match``) and schedules it with a register tile
    (``_tiles`` by default, each of ``tilings`` for tuning): the shared driver of ``WindowReduction``
    and ``BlockedWindow``."""

    def schedule_func(self, sch, tunable):
        found = self._match(sch)
        if found is None:
            return None
        try:
            conv, pad, tail = found
            self._schedule(sch, conv, pad, tail, self._tiles(sch, conv))
        except Exception:
            return None
        return sch

    def design_space(self, sch) -> list:
        """The schedules tuning measures: copies of ``sch``, one per register tile of
        :meth:`tilings` (the default one first); empty when the rule does not apply."""
        found = self._match(sch)
        if found is None:
            return []
        out = []
        for tiles in self.tilings(sch, found[0]):
            trial = sch.copy()
            try:
                conv, pad, tail = self._match(trial)  # None: a TypeError, like any failure here
                self._schedule(trial, conv, pad, tail, tiles)
            except Exception:
                continue
            out.append(trial)
        return out
