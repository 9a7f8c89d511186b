"""The fusion cost model (docs/passes.md, "The cost model"): tile back-propagation, working set,
DRAM bytes, recompute, and the dynamic programme that partitions a graph into fusion groups.

No library computes this for ONNX graphs (TVM's FuseOps has no memory model, and the SRAM-fit
check of its example NPU is a placeholder), so it is written here, on a small data model that
``fuse.py`` extracts from the graph.

Tiles. A group's output is cut into th x tw spatial tiles with all channels, one image at a time.
Each tile is propagated backwards through the group, per axis, as an interval: a conv's input
interval for output rows [a, b) is [a*s - p, (b - 1)*s - p + (k - 1)*d + 1) clipped to the
tensor (so extent = (out - 1)*s + (k - 1)*d + 1 inside the tensor); an elementwise op passes the
interval through (a 1 x 1 broadcast operand needs [0, 1)). A tensor read by several ops of the
group needs the hull of their intervals. Axes are independent, so areas are products of lengths.

Per group and tile size:
  working set  = sum over the group's tensors of (largest tile extent) * C * bytes
                 + all weights (resident) or the largest op's weights (streamed);
  DRAM fused   = sum over external inputs of (sum over tiles of the extent) * C * bytes
                 + the output once + weights once (resident) or once per tile (streamed);
  DRAM unfused = sum over ops of inputs + output + weights (every intermediate round-trips DRAM);
  recompute    = sum over ops of MACs * (sum of tile output areas / output area - 1)
                 (halos are recomputed, Alwani et al.'s "recompute" variant).
Time = bytes / DRAM bandwidth + MACs / MAC rate. A group is legal when its working set fits
alpha * on-chip memory for some tile, and profitable only when its fused time is strictly below
the unfused time of its members: a group the model scores as a loss is never formed.

Partition: ops in topological order; best[j] = min(best[j-1] + single(j), min over windows
(i, j] of fusable ops with one exit of best[i] + fused(i+1..j)). A contiguous window of a
topological order is convex, so no path can leave a group and re-enter it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Tensor:
    name: str
    batch: int
    channels: int
    size: tuple[int, int]
    elem: float  # bytes per element: 0.5 for the 4-bit types

    @property
    def bytes(self) -> float:
        return self.batch * self.channels * self.size[0] * self.size[1] * self.elem


@dataclass(frozen=True)
class Op:
    name: str
    op_type: str
    inputs: tuple[str, ...]  # activation tensors read (constants count as weights)
    output: str
    fusable: bool = True
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pad_begin: tuple[int, int] = (0, 0)
    macs: int = 0
    weight_bytes: float = 0
    unfused_bytes: float = 0  # inputs + output + weights, for every node


@dataclass(frozen=True)
class Costs:
    bandwidth: float  # DRAM bytes per second
    mac_rate: float  # MACs per second
    budget: int  # on-chip bytes a tile's working set may use (alpha * memory)


@dataclass
class GroupPlan:
    ops: list[str]
    output: str
    tile: tuple[int, int]
    tiles: int
    working_set: float  # bytes (like every byte count here, fractional only for the 4-bit types)
    weights_resident: bool
    dram_before: float
    dram_after: float
    recompute_macs: int
    seconds_before: float
    seconds_after: float

    def to_dict(self) -> dict:
        return {
            "ops": self.ops,
            "output": self.output,
            "tile": list(self.tile),
            "tiles": self.tiles,
            "working_set": self.working_set,
            "weights_resident": self.weights_resident,
            "dram_before": self.dram_before,
            "dram_after": self.dram_after,
            "recompute_macs": self.recompute_macs,
            "seconds_before": self.seconds_before,
            "seconds_after": self.seconds_after,
        }


@dataclass
class Plan:
    groups: list[GroupPlan] = field(default_factory=list)
    dram_unfused: float = 0
    dram_fused: float = 0
    recompute_macs: int = 0


def tile_sizes(size: int) -> list[int]:
    sizes = {size}
    t = 1
    while t < size:
        sizes.add(t)
        t *= 2
    return sorted(sizes)


def axis_extents(ops: list[Op], tensors: dict[str, Tensor], axis: int, tile: int) -> dict[str, tuple[int, int]]:
    """Per tensor of the group: (sum over tiles of its extent, largest extent) along ``axis``."""
    size = tensors[ops[-1].output].size[axis]
    starts = np.arange(0, size, tile)
    req = {ops[-1].output: (starts, np.minimum(starts + tile, size))}
    for op in reversed(ops):
        a, b = req[op.output]
        for name in op.inputs:
            n_in = tensors[name].size[axis]
            if n_in == 1:
                ia, ib = np.zeros_like(a), np.ones_like(b)
            elif op.op_type == "Conv":
                s, k, d, p = op.stride[axis], op.kernel[axis], op.dilation[axis], op.pad_begin[axis]
                ia = np.clip(a * s - p, 0, n_in)
                ib = np.clip((b - 1) * s - p + (k - 1) * d + 1, 0, n_in)
            else:
                ia, ib = a, b
            if name in req:
                ia, ib = np.minimum(req[name][0], ia), np.maximum(req[name][1], ib)
            req[name] = (ia, ib)
    return {name: (int(np.sum(b - a)), int(np.max(b - a))) for name, (a, b) in req.items()}


def evaluate(ops: list[Op], tensors: dict[str, Tensor], costs: Costs) -> GroupPlan | None:
    """The cheapest legal tiling of ``ops`` as one group, or None if none fits or none gains."""
    out = tensors[ops[-1].output]
    produced = {op.output for op in ops}
    before = sum(op.unfused_bytes for op in ops)
    seconds_before = before / costs.bandwidth
    weights = sum(op.weight_bytes for op in ops)
    largest_w = max(op.weight_bytes for op in ops)
    per_axis = [{t: axis_extents(ops, tensors, axis, t) for t in tile_sizes(out.size[axis])} for axis in (0, 1)]
    best = None
    for th, eh in per_axis[0].items():
        for tw, ew in per_axis[1].items():
            act = sum(eh[n][1] * ew[n][1] * tensors[n].channels * tensors[n].elem for n in eh)
            reads = sum(
                eh[n][0] * ew[n][0] * tensors[n].channels * tensors[n].elem * tensors[n].batch
                for n in eh
                if n not in produced
            )
            recompute = sum(
                int(
                    op.macs
                    * (
                        eh[op.output][0] * ew[op.output][0] / (tensors[op.output].size[0] * tensors[op.output].size[1])
                        - 1
                    )
                )
                for op in ops
            )
            tiles = -(-out.size[0] // th) * -(-out.size[1] // tw) * out.batch
            for resident in (True, False):
                ws = act + (weights if resident else largest_w)
                if ws > costs.budget:
                    continue
                dram = reads + out.bytes + (weights if resident else weights * tiles)
                seconds = dram / costs.bandwidth + recompute / costs.mac_rate
                # ties go to fewer, larger tiles (the model has no per-tile overhead term)
                if seconds < seconds_before and (best is None or (seconds, tiles) < (best.seconds_after, best.tiles)):
                    best = GroupPlan(
                        [op.name for op in ops],
                        out.name,
                        (th, tw),
                        tiles,
                        ws,
                        resident,
                        before,
                        dram,
                        recompute,
                        seconds_before,
                        seconds,
                    )
    return best


def partition(
    ops: list[Op],
    tensors: dict[str, Tensor],
    consumers: dict[str, set[str]],
    graph_outputs: set[str],
    costs: Costs,
    max_ops: int = 10,
) -> Plan:
    """Choose fusion groups over ``ops`` (topological order) by dynamic programming."""
    n = len(ops)
    best = [0.0] * (n + 1)
    choice: list[GroupPlan | None] = [None] * (n + 1)
    for j in range(1, n + 1):
        best[j] = best[j - 1] + ops[j - 1].unfused_bytes / costs.bandwidth
        for i in range(j - 2, max(-1, j - 1 - max_ops), -1):
            window = ops[i:j]
            if not window[0].fusable:
                break
            if not _single_exit(window, consumers, graph_outputs):
                continue
            group = evaluate(window, tensors, costs)
            if group is not None and best[i] + group.seconds_after < best[j]:
                best[j], choice[j] = best[i] + group.seconds_after, group
    return _backtrack(ops, choice)


def _single_exit(window: list[Op], consumers: dict[str, set[str]], graph_outputs: set[str]) -> bool:
    if not all(op.fusable for op in window):
        return False
    names = {op.name for op in window}
    for op in window[:-1]:
        users = consumers.get(op.output, set())
        if not users or op.output in graph_outputs or not users <= names:
            return False
    return True


def _backtrack(ops: list[Op], choice: list[GroupPlan | None]) -> Plan:
    plan = Plan(dram_unfused=sum(op.unfused_bytes for op in ops))
    j = len(ops)
    while j > 0:
        group = choice[j]
        if group is None:
            plan.dram_fused += ops[j - 1].unfused_bytes
            j -= 1
        else:
            plan.groups.append(group)
            plan.dram_fused += group.dram_after
            plan.recompute_macs += group.recompute_macs
            j -= len(group.ops)
    plan.groups.reverse()
    return plan
