"""Default CPU schedule of a fused conv chain: one ``fuse`` group (inverted residual: 1x1 expand,
kxk depthwise, 1x1 project, residual add) computed tile by tile, its intermediates never leaving
the cache.

A group the ``fuse`` pass planned reaches the CPU rules as one PrimFunc holding several
reductions (``targets/tvm/fusion.py``); ``WindowReduction`` schedules one reduction only, so
without this rule that PrimFunc ran as naive loops and fusion lost (bench/bench_fusion.py).

The schedule:

1. every epilogue is merged into the block after its convolution (bias, activation and identity
   copies are inlined into one block that writes ``act(conv + bias)``), constants (bias reshapes)
   inlined into their readers;
2. the output is cut into bands of ``rows`` output rows (all channels, full width), the band loop
   runs in parallel, and every producer block is computed inside it: TVM infers each
   intermediate's halo rows, and buffer compaction shrinks every intermediate to one band, which
   is what keeps it in the cache;
3. inside a band each convolution is register-tiled like ``WindowReduction`` (``c_block``
   output channels x ``w_block`` columns, reduction loops outside the tile, the tile unrolled and
   vectorized along the width), each elementwise block vectorized along the width.

``rows``: the largest band whose intermediates (every buffer the PrimFunc allocates, per output
row, scaled by its rows per output row) fit half the on-chip bytes, at least one row.
"""

from __future__ import annotations

from .schedule_base import (
    ACCUMULATORS,
    DATA_PAR,
    REDUCE,
    _block_kinds,
    _channels_sharing_input,
    _coefficient,
    _divisor_at_most,
    _extent,
    _Rule,
)

MIN_ROWS = 8  # a band of fewer rows recomputes too much of its halo (3x3: 2 rows more per band)
# A group whose band of MIN_ROWS rows needs more intermediate bytes than this many times the
# on-chip memory is left unfused: measured on mac_small (bench/bench_fusion.py), the stem group
# (1.8 MB a band, 1 MB L2) still gained 2x, the 5x5 stride-2 units (2.3 and 3.0 MB) lost 5-20 %.
BAND_LIMIT_X_ONCHIP = 2


def oversized(model, groups: list[tuple[str, list[str], str]], onchip_bytes: int) -> dict[str, str]:
    """{group id: why it stays unfused} for the groups (id, node names, output) of ``model``
    whose band of MIN_ROWS rows outgrows BAND_LIMIT_X_ONCHIP x ``onchip_bytes``."""
    limit, split = BAND_LIMIT_X_ONCHIP * onchip_bytes, {}
    for gid, nodes, output in groups:
        need = band_bytes(model, set(nodes), output)
        if need > limit:
            split[gid] = (
                f"a band of {MIN_ROWS} full-width rows needs {need / 1e6:.1f} MB of intermediates, "
                f"over {BAND_LIMIT_X_ONCHIP} x the {onchip_bytes / 1e6:.1f} MB on chip"
            )
    return split


def band_bytes(model, nodes: set[str], output: str) -> float:
    """Intermediate bytes of a band of MIN_ROWS output rows of the group ``nodes`` (ONNX node
    names) of ``model`` (static shapes, inferred): each conv output but the group's, at full
    width, with its rows per output row (a strided group's early tensors are taller)."""
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]
    }
    out_h = shapes[output][2]
    per_row = 0.0
    for node in model.graph.node:
        if node.name in nodes and node.op_type == "Conv" and node.output[0] != output:
            _, c, h, w = shapes[node.output[0]]
            per_row += c * w * 4 * max(1.0, h / out_h)
    return per_row * MIN_ROWS


class FusedChain(_Rule):
    """A PrimFunc with two or more conv-like reductions, or one with more than its padding before
    it (a group that starts with an Add): see the module docstring."""

    def schedule_func(self, sch, tunable):
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        kinds = [_block_kinds(sch, b) for b in blocks]
        convs = [(i, k) for i, k in enumerate(kinds) if k and REDUCE in k]
        if not convs or any(k is None for k in kinds) or any(k[:4] != [DATA_PAR] * 4 for _, k in convs):
            return None
        if len(convs) == 1 and convs[0][0] <= 1:  # one conv, at most its padding before it: WindowReduction's
            return None
        try:
            self._schedule(sch)
        except Exception:
            return None
        return sch

    def _schedule(self, sch) -> None:
        _merge_epilogues(sch)
        _deinterleave_strided_inputs(sch)
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
        out = blocks[-1]
        rows = band_rows(sch, self.facts.onchip_bytes // 2)
        n, c, h, w = sch.get_loops(out)[:4]
        ho, hi = sch.split(h, [None, rows])
        sch.reorder(n, ho, c, hi, w)
        band = sch.fuse(n, ho)
        sch.parallel(band)
        for b in reversed(blocks[:-1]):
            sch.compute_at(b, band, preserve_unit_loops=True)
        inner = _blocks_under(sch, band)
        convs = [b for b in inner if REDUCE in _block_kinds_in_band(sch, b)]
        moved: set[str] = set()
        for conv in convs:
            moved |= self._conv(sch, conv, out)
        for b in inner:
            if REDUCE not in _block_kinds_in_band(sch, b) and sch.get(b).name_hint not in moved:
                self._elementwise(sch, b)
        self._elementwise(sch, out)

    def _conv(self, sch, conv, out) -> set[str]:
        """Register-tile ``conv``; its one elementwise consumer (not the output) is computed per
        register tile, so the accumulators never leave the registers. The names it moved."""
        loops = sch.get_loops(conv)
        c, h, w, *red = loops[-6:]
        share = _channels_sharing_input(sch.get(conv))  # output channels that read one input
        lanes = self.facts.lanes
        wb = _divisor_at_most(_extent(sch, w), 2 * lanes)
        cb = _divisor_at_most(share, max(1, ACCUMULATORS // max(1, -(-wb // lanes)))) if share > 1 else 1
        co, ci = sch.split(c, [None, cb])
        wo, wi = sch.split(w, [None, wb])
        sch.reorder(co, h, wo, *red, ci, wi)
        for loop in red:
            if _extent(sch, loop) <= 7:
                sch.unroll(loop)
        sch.unroll(ci)
        sch.vectorize(wi)
        init = sch.decompose_reduction(conv, red[0])
        sch.vectorize(sch.get_loops(init)[-1])
        consumers = list(sch.get_consumers(conv))
        if len(consumers) != 1 or sch.get(consumers[0]).name_hint == sch.get(out).name_hint:
            return set()
        epilogue = consumers[0]
        sch.reverse_compute_at(epilogue, wo, preserve_unit_loops=True)
        *_, last = sch.get_loops(epilogue)
        sch.vectorize(last)
        sch.set_scope(conv, 0, "local")
        return {sch.get(epilogue).name_hint}

    def _elementwise(self, sch, block) -> None:
        last = sch.get_loops(block)[-1]
        vec = _divisor_at_most(_extent(sch, last), 2 * self.facts.lanes)
        if vec > 1:
            sch.vectorize(sch.split(last, [None, vec])[1])


def band_rows(sch, budget: int) -> int:
    """Output rows per band: the most whose intermediates fit ``budget`` bytes (at least 1)."""
    last = sch.get_child_blocks(sch.get_sblock("root"))[-1]
    out_h = int(sch.get(last).writes[0].source.shape[2])
    per_row = 0.0
    for buf in _allocated(sch):
        shape = [int(d) for d in buf.shape]
        if len(shape) == 4:
            per_row += shape[1] * shape[3] * 4 * max(1.0, shape[2] / out_h)
    rows = max(MIN_ROWS, int(budget // per_row)) if per_row else out_h
    return _divisor_at_most(out_h, rows)


def _allocated(sch) -> list:
    """The intermediate buffers (FuseTIR allocates them all in the root block)."""
    return list(sch.get(sch.get_sblock("root")).alloc_buffers)


def _merge_epilogues(sch) -> None:
    """Inline the blocks that read no intermediate (bias reshapes, copies of an input) into their
    readers, then merge every elementwise block into its one elementwise producer (bias, then
    activation, then an identity copy become one block), until nothing changes. Padding that
    grows a tensor stays a block of its own: the band is padded once, not at every tap."""
    inner = {b.name for b in _allocated(sch)}

    def reduction(block) -> bool:
        return REDUCE in (_block_kinds(sch, block) or [REDUCE])

    for b in sch.get_child_blocks(sch.get_sblock("root"))[:-1]:
        stmt = sch.get(b)
        if not reduction(b) and not _grows(stmt) and all(r.source.name not in inner for r in stmt.reads):
            _try(sch.compute_inline, b)
    changed = True
    while changed:
        changed = False
        for b in sch.get_child_blocks(sch.get_sblock("root")):
            producers = list(sch.get_producers(b))
            if reduction(b) or len(producers) != 1 or reduction(producers[0]):
                continue
            if _try(sch.reverse_compute_inline, b):
                changed = True
                break


def _deinterleave_strided_inputs(sch) -> None:
    """A conv with column stride s reads its (padded) input every s-th column: stored as
    (..., w % s, w // s), the vector loads along the output width are contiguous, not gathers
    (as ``WindowReduction`` does for a single conv)."""
    for conv in sch.get_child_blocks(sch.get_sblock("root")):
        if REDUCE not in (_block_kinds(sch, conv) or [REDUCE]):
            continue
        stmt = sch.get(conv)
        stride = _coefficient(stmt.reads[0].region[-1].min, stmt.iter_vars[3].var)
        producers = [p for p in sch.get_producers(conv) if sch.get(p).writes[0].source.same_as(stmt.reads[0].source)]
        if stride <= 1 or len(producers) != 1:
            continue
        width = int(stmt.reads[0].source.shape[-1])
        if width % stride == 0:
            sch.transform_layout(producers[0], ("write", 0), _by_phase(stride))


def _by_phase(stride: int):
    """The index map (n, c, h, w) -> (n, c, h, w % stride, w // stride)."""
    return lambda n, c, h, w: (n, c, h, w % stride, w // stride)


def _grows(stmt) -> bool:
    """Whether the block writes a larger tensor than it reads (zero padding)."""
    out = [int(d) for d in stmt.writes[0].source.shape]
    return any(
        len(r.source.shape) == len(out) and any(int(a) < b for a, b in zip(r.source.shape, out)) for r in stmt.reads
    )


def _try(primitive, block) -> bool:
    try:
        primitive(block)
    except Exception:
        return False
    return True


def _blocks_under(sch, loop) -> list:
    return list(sch.get_child_blocks(loop))


def _block_kinds_in_band(sch, block) -> list[int]:
    return [int(iv.iter_type) for iv in sch.get(block).iter_vars]


def _is_pointwise(sch, red) -> bool:
    return all(_extent(sch, loop) == 1 for loop in red[1:])
