"""deploycc's GPU schedules (CUDA and OpenCL): TVM's default GPU pipeline with one rule added.

TVM 0.27's default GPU pipeline fuses the graph's operators and schedules every fused PrimFunc
with dlight's rules, first match wins: Matmul, GEMV, Reduction, GeneralReduction, Fallback.
Two of them break on one kind of reduction that a zoo net meets when its last feature map is
1x1 (the smallest input sizes): a grouped or depthwise convolution on a 1x1 map. There, every
spatial index of the block (batch, output channel) indexes every buffer it reads and writes, so
each output element is a dot product of its own slices and shares no operand with any other:

- GEMV takes it for a GEMV (two reads, one of lower rank) and stops on ``assert s_loops`` in
  its ``normalize``: it has no spatial loop left after moving the shared indices to the batch;
- Reduction schedules it with an rfactor whose cross-thread reduction loop is not the innermost,
  which ``LowerCrossThreadReduction`` refuses when the kernel is lowered.

:class:`IndependentDots` catches exactly that shape before GEMV and gives it Fallback's
schedule: one thread per output element (the fused spatial loops bound to blocks and threads),
its reduction a serial loop in that thread. The reductions are short (kernel area times the
channels of one group), so nothing is lost by not splitting them across threads.
"""

from __future__ import annotations

from .tensor_intrin_import import import_tensor_intrinsics


def schedule_rules() -> list:
    """dlight's default GPU rules with :class:`IndependentDots` before GEMV."""
    from tvm.s_tir import dlight

    return [
        dlight.gpu.Matmul(),
        independent_dots_rule(),
        dlight.gpu.GEMV(),
        dlight.gpu.Reduction(),
        dlight.gpu.GeneralReduction(),
        dlight.gpu.Fallback(),
    ]


def pipeline(tvm_target, tensor_cores: bool = False):
    """TVM's default Relax pipeline for a GPU ``tvm_target`` (its CUDA one for CUDA, the generic
    GPU one else), with :func:`schedule_rules` in place of dlight's default list. With
    ``tensor_cores`` (float16 compute), the intrinsic tables dlight's Matmul rule imports for
    them are imported first, the fast way (``tensor_intrin_import``)."""
    import importlib

    import tvm
    from tvm import relax
    from tvm.s_tir import dlight

    # the stages of TVM's own pipeline for this backend (the module itself: the CUDA package
    # does not re-export dataflow_lower_passes, so tvm.relax.pipeline's dispatcher fails on it)
    backend = "cuda" if tvm_target.kind.name == "cuda" else "gpu_generic"
    stages = importlib.import_module(f"tvm.relax.backend.{backend}.pipeline")

    legalize = [
        relax.transform.LegalizeOps(),
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
        dlight.ApplyDefaultSchedule(*schedule_rules()),
    ]

    @tvm.transform.module_pass(opt_level=0, name="deploycc_gpu_pipeline")
    def _pipeline(mod, _ctx):
        if tensor_cores:
            import_tensor_intrinsics()
        with tvm_target:
            seq = tvm.transform.Sequential(
                stages.library_dispatch_passes(tvm_target)
                + legalize
                + stages.dataflow_lower_passes(tvm_target)
                + stages.finalize_passes(tvm_target)
            )
            return seq(mod)

    return _pipeline


def independent_dots_rule():
    """The rule object (built on first use: dlight is imported only by a GPU build)."""
    from tvm import s_tir
    from tvm.s_tir import dlight
    from tvm.s_tir.dlight.analysis import normalize_prim_func

    class IndependentDots(dlight.gpu.Fallback):
        """A function whose reduction blocks each compute one independent dot product per output
        element (see the module docstring) gets Fallback's schedule; any other is left to the
        rules after this one."""

        def apply(self, func, target, tunable):
            if not self.is_target_available(target):
                return None
            sch = s_tir.Schedule(func)
            blocks = normalize_prim_func(sch)
            reductions = [sch.get(b.block_rv) for b in blocks or [] if b.is_reduction()]
            if not reductions or not all(_independent_dots(block) for block in reductions):
                return None
            return super().apply(func, target, tunable)

    return IndependentDots()


def _independent_dots(block) -> bool:
    """Whether a reduction block (an ``SBlock``) reads two or more buffers and has spatial
    iterators of extent above 1, each of which indexes every buffer the block reads and writes
    (GEMV's ``normalize`` then has no spatial loop to keep)."""
    from tvm import tirx
    from tvm.s_tir.dlight.analysis import collect_block_iter_vars_used_in_access_region

    if len(block.reads) < 2 or len(block.writes) != 1:
        return False
    spatial = {iv.var for iv in block.iter_vars if iv.iter_type == tirx.IterVar.DataPar and not _unit(iv.dom.extent)}
    regions = [r.region for r in (*block.reads, *block.writes)]
    return bool(spatial) and all(
        spatial <= collect_block_iter_vars_used_in_access_region(block, region) for region in regions
    )


def _unit(extent) -> bool:
    from tvm import tirx

    return isinstance(extent, tirx.IntImm) and int(extent) == 1
