"""Default schedule of the channel-blocked window reductions (``blocked_layout``): the blocked
conv, the conv reading an NCHW stem input, the blocked depthwise conv and blocked pooling, each
with its fused epilogue. One rule for all four, because in NCHW[x]c they share one shape: five
spatial axes (N, C-block, H, W, lane) and a small reduction, the lane axis innermost in memory.

The schedule is the register tile of MLAS's NCHWc kernels:

- the lane axis (``lanes`` fp32, one vector register) is vectorized, ``w_block`` output columns
  and, where every output channel reads the same input (a dense conv), ``c_block`` channel
  blocks are unrolled around it: ``c_block x w_block`` accumulator vectors;
- the reduction is outside that tile with the input channel's lane (a dense conv's last
  reduction axis) innermost and unrolled, so each step loads one weight vector per channel block
  and broadcasts one input value per column; a conv's kernel window stays a loop around it
  (unrolled too, mac_small compiled in 18.7 s instead of 5.0 and ran no faster: 47.1 against
  47.7 ms at 784 x 784, loaded machine), a depthwise conv's or pool's window is unrolled;
- a dense conv walks output rows in parallel with the channel blocks inside a row (the row's
  input slab is reused by every channel block); depthwise and pooling walk (channel block, row)
  in parallel; the zero padding is built per row inside the parallel loop, or, for a depthwise
  conv or pool whose padded plane fits the cache, once per channel block (``_plane_fits``);
- the epilogue (bias, activation, residual add) is computed on the accumulator tile, which never
  leaves registers.

``design_space`` gives the same schedule with each register tile that fits (``tilings``),
the space ``tuning`` measures, like ``WindowReduction.design_space``.
"""

from __future__ import annotations

from .schedule_base import DATA_PAR, REDUCE, _block_kinds, _divisor_at_most, _extent, _WindowRule

PLANE_BLOCKS = 4  # parallel channel blocks a depthwise conv needs to build its padding per block


def accumulator_registers(lanes: int) -> int:
    """Vector registers kept for the accumulator tile: AVX-512 and NEON have 32, AVX2 16."""
    return 26 if lanes in (4, 16) else 12


class BlockedWindow(_WindowRule):
    """The blocked conv / depthwise / pooling rule: see the module docstring."""

    def tilings(self, sch, conv) -> list[tuple[int, int]]:
        """(c_block, w_block) tiles worth measuring, the analytic default first: channel tiles
        1, 2, 4 (dense convs only) dividing the channel blocks, column tiles dividing the width up
        to the accumulator registers."""
        default = self._tiles(sch, conv)
        loops = sch.get_loops(conv)
        cbs_total, width = _extent(sch, loops[1]), _extent(sch, loops[3])
        budget = accumulator_registers(self.facts.lanes)
        cbs = [d for d in (1, 2, 4) if cbs_total % d == 0] if self._dense(sch, conv) else [1]
        wbs = sorted({_divisor_at_most(width, limit) for limit in (2, 4, 8, 12, 16)})
        fits = [(cb, wb) for cb in cbs for wb in wbs if cb * wb <= budget]
        return [default] + [t for t in fits if t != default]

    def _match(self, sch):
        """(reduction block, padding block or None, last epilogue block or None), the epilogue
        inlined into its last block; None when the PrimFunc is not one blocked window reduction."""
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        kinds = [_block_kinds(sch, b) for b in blocks]
        red = [i for i, k in enumerate(kinds) if k and REDUCE in k]
        if len(red) != 1:
            return None
        r = red[0]
        k = kinds[r]
        if k is None or k[:5] != [DATA_PAR] * 5 or set(k[5:]) != {REDUCE}:
            return None
        if _extent(sch, sch.get_loops(blocks[r])[4]) != self.facts.lanes:
            return None
        pads, tail = blocks[:r], blocks[r + 1 :]
        if any(kinds[i] is None for i in range(r)):
            return None
        for b in pads[:-1] + tail[:-1]:  # an entry transform into the padding, the epilogue chain
            try:
                sch.compute_inline(b)
            except Exception:
                return None
        return blocks[r], pads[-1] if pads else None, tail[-1] if tail else None

    def _dense(self, sch, conv) -> bool:
        """Whether the input read does not depend on the output channel block (a dense conv)."""
        from tvm.tirx.analysis import undefined_vars

        stmt = sch.get(conv)
        c_var = stmt.iter_vars[1].var
        return not any(v.same_as(c_var) for rng in stmt.reads[0].region for v in undefined_vars(rng.min))

    def _tiles(self, sch, conv) -> tuple[int, int]:
        loops = sch.get_loops(conv)
        cbs_total, width = _extent(sch, loops[1]), _extent(sch, loops[3])
        budget = accumulator_registers(self.facts.lanes)
        if self._dense(sch, conv):
            cb = 2 if cbs_total % 2 == 0 else 1
            return cb, _divisor_at_most(width, min(8, budget // cb))
        return 1, _divisor_at_most(width, 8)

    def _plane_fits(self, sch, pad, n, co) -> bool:
        """Whether a depthwise conv or pool builds its padding per channel block rather than per
        output row: a row needs ``kh`` padded input rows (5 for a 3x3 kernel at dilation 2), so
        per row it copies its input up to ``kh / stride`` times; per block once, where one padded
        plane fits half the on-chip memory and there are ``PLANE_BLOCKS`` blocks to share out."""
        if pad is None or _extent(sch, n) * _extent(sch, co) < PLANE_BLOCKS:
            return False
        shape = [int(d) for d in sch.get(pad).writes[0].source.shape]
        plane = 4 * shape[-3] * shape[-2] * shape[-1]
        return plane <= self.facts.onchip_bytes // 2

    def _schedule(self, sch, conv, pad, out, tiles):
        cb, wb = tiles
        dense = self._dense(sch, conv)
        if out is None:  # accumulate in registers, write the tile once
            out = sch.cache_write(conv, 0, "global")
        n, c, h, w, lane, *red = sch.get_loops(conv)
        co, ci = sch.split(c, [None, cb])
        wo, wi = sch.split(w, [None, wb])
        if dense:
            sch.reorder(n, h, co, wo, *red, ci, wi, lane)
            row = sch.fuse(n, h)
        elif self._plane_fits(sch, pad, n, co):  # each padded plane built once, in cache
            sch.reorder(n, co, h, wo, *red, ci, wi, lane)
            row = sch.fuse(n, co)
        else:
            sch.reorder(n, co, h, wo, *red, ci, wi, lane)
            row = sch.fuse(n, co, h)
        sch.parallel(row)
        lane_reduction = _extent(sch, red[-1]) == self.facts.lanes and len(red) == 4
        for loop in red[-1:] if lane_reduction else red:  # a conv's kernel window stays a loop
            if _extent(sch, loop) <= 16:
                sch.unroll(loop)
        sch.unroll(ci)
        sch.unroll(wi)
        sch.vectorize(lane)
        sch.reverse_compute_at(out, wo, preserve_unit_loops=True)
        *_, oc, ow, ol = sch.get_loops(out)
        sch.unroll(oc)
        sch.unroll(ow)
        sch.vectorize(ol)
        sch.set_scope(conv, 0, "local")
        init = sch.decompose_reduction(conv, red[0])
        *_, ic, iw, il = sch.get_loops(init)
        sch.unroll(ic)
        sch.unroll(iw)
        sch.vectorize(il)
        if pad is not None:
            sch.compute_at(pad, row, preserve_unit_loops=True)
            last = sch.get_loops(pad)[-1]
            if _extent(sch, last) == self.facts.lanes:
                sch.vectorize(last)
