"""Default CPU schedules for TVM Relax PrimFuncs: what a build gets when no tuning record exists.

TVM 0.27 ships CPU default rules for GEMV and row reductions only (``tvm.s_tir.dlight.cpu``); an
untuned convolution is a naive scalar loop nest, about 100x slower than ONNX Runtime. These rules
(dlight ``ScheduleRule`` objects, applied with ``dlight.ApplyDefaultSchedule`` after ``FuseTIR``)
schedule the fused PrimFuncs the default pipeline produces. Hand-written because no library
offers CPU schedules for Relax; the design follows TVM's older x86/ARM TOPI direct-conv schedules.

``WindowReduction`` covers every block with spatial axes (N, C, H, W) and a small reduction:
conv2d (any groups, strides, dilations), depthwise conv and windowed pooling. It keeps the
layout NCHW (so no layout transform is needed anywhere in the network) and

- vectorizes along the output width (``lanes`` fp32 lanes from the target: AVX2 8, AVX-512 16,
  NEON 4) and register-tiles ``c_block`` output channels x ``w_block`` output columns, so each
  input vector loaded is reused for every channel of the tile (convs whose input does not depend
  on the output channel, i.e. depthwise and pooling, tile more columns instead);
- parallelizes output rows, and splits a row into column chunks when the input slab one row
  needs does not fit half of the on-chip memory the target file gives;
- computes the zero-padding per output row inside the parallel loop (never a whole padded copy);
- unrolls the kernel loops and fuses the epilogue (bias, BN, ReLU, residual add) into the tile,
  so the accumulator tile lives in registers.

``Elementwise`` parallelizes and vectorizes everything else (resize, concat, adds, reductions
over outer axes). Tile sizes come from ``CPUFacts`` (lanes, on-chip bytes, cores);
``WindowReduction.design_space`` gives the same schedule with every register tile that fits,
the design space tuning measures (``tvm_tuning``).
"""

from __future__ import annotations

from .schedule_base import (  # noqa: F401  (ACCUMULATORS, DATA_PAR: re-exported for the rules' users)
    ACCUMULATORS,
    DATA_PAR,
    REDUCE,
    CPUFacts,
    _block_kinds,
    _channels_sharing_input,
    _coefficient,
    _divisor_at_most,
    _extent,
    _reads_depend_on_channel,
    _Rule,
    _WindowRule,
)


def rules(facts: CPUFacts) -> list:
    """The rule list for ``dlight.ApplyDefaultSchedule``, most specific first."""
    from tvm.s_tir import dlight

    from .blocked_window import BlockedWindow
    from .fused_chain import FusedChain

    return [
        Resize(facts),
        FusedChain(facts),
        BlockedWindow(facts),
        WindowReduction(facts),
        Elementwise(facts),
        dlight.cpu.GEMV(),
        dlight.cpu.Reduction(),
    ]


def pipeline(tvm_target, facts: CPUFacts, report: dict | None = None, fuse: bool = True):
    """TVM 0.27's CPU pipeline (``relax.backend.cpu_generic``) with these rules applied after
    ``FuseTIR``. PrimFuncs a tuning database already scheduled (``tirx.is_scheduled``) are kept.
    ``report``, when given, is filled with the PrimFunc names per origin: ``tuned`` (from the
    database), ``default`` (these rules) and ``unscheduled`` (naive loops no rule matched)."""
    import tvm
    from tvm.relax.backend.cpu_generic import pipeline as cpu
    from tvm.s_tir import dlight

    @tvm.transform.module_pass(opt_level=0, name="DeployccCPUPipeline")
    def _pipeline(mod, _ctx):
        with tvm_target:
            legalize = legalize_passes(tvm_target) if fuse else legalize_passes(tvm_target)[:1]
            if fuse:  # a fuse-plan group stays one PrimFunc of its own: opaque to FuseOps
                legalize.insert(2, _groups_opaque())
            mod = tvm.transform.Sequential(cpu.library_dispatch_passes(tvm_target) + legalize)(mod)
            before = _scheduled(mod)
            mod = dlight.ApplyDefaultSchedule(*rules(facts))(mod)
            if report is not None:
                after = _scheduled(mod)
                report.update(
                    tuned=sorted(n for n, s in before.items() if s),
                    default=sorted(n for n, s in after.items() if s and not before[n]),
                    unscheduled=sorted(n for n, s in after.items() if not s),
                )
            return tvm.transform.Sequential(cpu.dataflow_lower_passes(tvm_target) + cpu.finalize_passes(tvm_target))(
                mod
            )

    return _pipeline


def _groups_opaque():
    """After AnnotateTIROpPattern: every PrimFunc of a fuse-plan group (``deploycc_*``, made by
    ``fusion.py``) is marked opaque, so TVM's FuseOps fuses the ops around the groups (a conv
    outside them with its bias and activation) and never a group with its neighbours."""
    import tvm

    @tvm.transform.module_pass(opt_level=0, name="DeployccGroupsOpaque")
    def _opaque(mod, _ctx):
        for gv, func in list(mod.functions_items()):
            if isinstance(func, tvm.tirx.PrimFunc) and gv.name_hint.startswith("deploycc_"):
                mod[gv] = func.with_attr("op_pattern", 8)  # relay.OpPatternKind.kOpaque
        return mod

    return _opaque


def _scheduled(mod) -> dict[str, bool]:
    import tvm

    return {
        gv.name_hint: bool(f.attrs and f.attrs.get("tirx.is_scheduled", False))
        for gv, f in mod.functions_items()
        if isinstance(f, tvm.tirx.PrimFunc)
    }


def legalize_passes(tvm_target) -> list:
    """TVM's CPU legalization, with the separable bilinear resize (``tvm_cpu_resize``)."""
    from tvm import relax
    from tvm.relax.backend.cpu_generic import pipeline as cpu

    from .cpu_resize import legalize_resize2d

    passes = cpu.legalize_passes(tvm_target)
    assert isinstance(passes[0], type(relax.transform.LegalizeOps()))
    return [relax.transform.LegalizeOps({"relax.image.resize2d": legalize_resize2d}), *passes[1:]]


def _inline_chain(sch, blocks) -> bool:
    """Inline every block but the last into its consumer; False if one cannot be inlined."""
    for b in blocks[:-1]:
        try:
            sch.compute_inline(b)
        except Exception:
            return False
    return True


def _prepare_input(sch, conv, pad, wb: int | None):
    """(padding block or None, transformed): how the conv's input reaches it.

    - A padding that pads nothing is inlined.
    - With a column stride s > 1 the padded input is stored as (..., w % s, w // s), so the vector
      loads along the output width are contiguous instead of gathers.
    - A 1x1 stride-1 conv with channel reuse (``wb`` given) copies its input row into
      (w // wb, c, w % wb) blocks: the reduction over channels then streams through consecutive
      cache lines instead of lines a power-of-two plane apart, which all map to one cache set."""
    stmt = sch.get(conv)
    w_var, data = stmt.iter_vars[3].var, stmt.reads[0]
    stride = _coefficient(data.region[-1].min, w_var)
    pointwise = all(int(iv.dom.extent) == 1 for iv in stmt.iter_vars[5:])
    blocked = wb is not None and stride == 1 and pointwise
    if pad is not None and not blocked and _same_shape(sch.get(pad).writes[0].source, sch.get(pad).reads[0].source):
        sch.compute_inline(pad)
        pad = None
    if stride <= 1 and not blocked:
        return pad, False
    if pad is None:
        pad = sch.cache_read(conv, 0, "global")
    width = int(sch.get(pad).writes[0].source.shape[-1])
    if blocked and wb is not None and width % wb == 0:  # blocked implies wb is not None
        sch.transform_layout(pad, ("write", 0), lambda n, c, h, w: (n, h, w // wb, c, w % wb))
        return pad, True
    if stride > 1 and width % stride == 0:
        sch.transform_layout(pad, ("write", 0), lambda n, c, h, w: (n, c, h, w % stride, w // stride))
        return pad, True
    return pad, False


def _same_shape(a, b) -> bool:
    return len(a.shape) == len(b.shape) and all(int(x) == int(y) for x, y in zip(a.shape, b.shape))


class WindowReduction(_WindowRule):
    """conv2d / depthwise / grouped conv / pooling: see the module docstring."""

    def tilings(self, sch, conv) -> list[tuple[int, int]]:
        """(c_block, w_block) register tiles worth measuring, the analytic default first: every
        channel tile dividing the channels that share an input (<= 8) and column tile dividing
        the width (<= 4 vectors) whose accumulators fit the vector registers."""
        default = self._tiles(sch, conv)
        group = _channels_sharing_input(sch.get(conv))
        we, lanes = _extent(sch, sch.get_loops(conv)[3]), self.facts.lanes
        cbs = [d for d in range(1, min(group, 8) + 1) if group % d == 0] if group > 1 else [1]
        wbs = [d for d in range(lanes, min(we, 4 * lanes) + 1, lanes) if we % d == 0] or [_divisor_at_most(we, lanes)]
        fits = [(cb, wb) for cb in cbs for wb in wbs if cb * -(-wb // lanes) <= ACCUMULATORS + 2]
        return [default] + [t for t in fits if t != default]

    def _match(self, sch):
        """(conv block, padding block or None, last epilogue block or None) with the epilogue
        inlined into its last block, or None when the PrimFunc is not one windowed reduction."""
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        kinds = [_block_kinds(sch, b) for b in blocks]
        red = [i for i, k in enumerate(kinds) if k and REDUCE in k]
        red_kinds = kinds[red[0]] if len(red) == 1 else None
        if red_kinds is None or red_kinds[:4] != [DATA_PAR] * 4 or set(red_kinds[4:]) != {REDUCE}:
            return None
        r = red[0]
        conv, pads, tail = blocks[r], blocks[:r], blocks[r + 1 :]
        if any(k is None or REDUCE in k for k in kinds[:r]) or len(pads) > 1:
            return None
        if tail and not _inline_chain(sch, list(tail)):
            return None
        return conv, pads[0] if pads else None, tail[-1] if tail else None

    def _tiles(self, sch, conv) -> tuple[int, int]:
        """The analytic register tile (c_block, w_block)."""
        group = _channels_sharing_input(sch.get(conv))
        we, lanes = _extent(sch, sch.get_loops(conv)[3]), self.facts.lanes
        if group > 1:  # every input vector feeds c_block accumulators: wide channel tile
            wb = _divisor_at_most(we, 2 * lanes)
            vectors = max(1, -(-wb // lanes))
            return _divisor_at_most(group, max(1, ACCUMULATORS // vectors)), wb  # tiles stay in one group
        return 1, _divisor_at_most(we, 4 * lanes)  # depthwise / pooling: no reuse, more columns for ILP

    def _schedule(self, sch, conv, pad, out, tiles):
        reuse = _channels_sharing_input(sch.get(conv)) > 1
        cb, wb = tiles
        pad, transformed = _prepare_input(sch, conv, pad, wb if reuse else None)
        n, c, h, w, *red = sch.get_loops(conv)
        co, ci = sch.split(c, [None, cb])
        wo, wi = sch.split(w, [None, wb])
        if reuse:  # rows outermost: one row's input slab is reused by every channel tile
            chunk = self._chunk(sch, conv, red, _extent(sch, wo), wb)
            if chunk:
                wc, wo = sch.split(wo, [None, chunk])
                sch.reorder(n, h, wc, co, wo, *red, ci, wi)
            else:
                sch.reorder(n, h, co, wo, *red, ci, wi)
            row = sch.fuse(n, h)
        else:  # depthwise / pooling: per channel tile, each padded plane built once
            sch.reorder(n, co, h, wo, *red, ci, wi)
            row = sch.fuse(n, co)
        sch.parallel(row)
        for loop in red:
            if _extent(sch, loop) <= 7:
                sch.unroll(loop)
        sch.unroll(ci)
        sch.vectorize(wi)
        if out is not None:
            sch.reverse_compute_at(out, wo, preserve_unit_loops=True)
            *_, oc, _oh, ow = sch.get_loops(out)
            sch.unroll(oc)
            sch.vectorize(ow)
            sch.set_scope(conv, 0, "local")
        init = sch.decompose_reduction(conv, red[0])
        *_, ic, iw = sch.get_loops(init)
        sch.unroll(ic)
        sch.vectorize(iw)
        if pad is not None:
            sch.compute_at(pad, row, preserve_unit_loops=True)
            loops = sch.get_loops(pad)
            if not transformed and _extent(sch, loops[-1]) % self.facts.lanes == 0:
                sch.vectorize(sch.split(loops[-1], [None, self.facts.lanes])[1])

    def _chunk(self, sch, conv, red, wo_extent, wb) -> int | None:
        """Column tiles per chunk so one chunk's input slab fits half the on-chip memory."""
        slab = 4 * wb * wo_extent
        for loop in red:
            slab *= _extent(sch, loop)
        budget = self.facts.onchip_bytes // 2
        if slab <= budget:
            return None
        return _divisor_at_most(wo_extent, max(1, wo_extent * budget // slab))


class Resize(_Rule):
    """The separable bilinear resize of ``tvm_cpu_resize``: output rows in parallel."""

    def schedule_func(self, sch, tunable):
        from .cpu_resize import schedule

        return sch if schedule(sch, self.facts) else None


class Elementwise(_Rule):
    """Any other PrimFunc: inline what can be inlined, parallelize outer spatial loops and vectorize
    the innermost one of injective blocks."""

    def schedule_func(self, sch, tunable):
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        for b in blocks[:-1]:
            try:
                sch.compute_inline(b)
            except Exception:
                pass
        scheduled = False
        for b in sch.get_child_blocks(sch.get_sblock("root")):
            kinds = _block_kinds(sch, b)
            if not kinds or kinds[0] != DATA_PAR:
                continue
            self._block(sch, b, kinds)
            scheduled = True
        return sch if scheduled else None

    def _block(self, sch, block, kinds) -> None:
        loops = sch.get_loops(block)
        spatial = len(kinds) - len([k for k in kinds if k != DATA_PAR]) if REDUCE not in kinds else kinds.index(REDUCE)
        outer = list(loops[:spatial])
        if REDUCE not in kinds and len(kinds) == spatial and _extent(sch, outer[-1]) >= self.facts.lanes:
            vec = _divisor_at_most(_extent(sch, outer[-1]), 4 * self.facts.lanes)
            if vec > 1:
                last_o, last_i = sch.split(outer[-1], [None, vec])
                sch.vectorize(last_i)
                outer[-1] = last_o
        fused = sch.fuse(*outer) if len(outer) > 1 else outer[0]
        sch.parallel(fused)
