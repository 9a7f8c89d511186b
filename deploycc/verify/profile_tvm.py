"""TVM side of the per-layer profile: every call of the Relax VM timed through its instrument hook.

TVM 0.27's Relax ``VirtualMachine`` has no ``profile`` method any more; what it offers is
``set_instrument``, a function called before and after each Call instruction with the callee's
symbol. Timing between the two gives the time of every PrimFunc call (``conv2d3``, ``add1``, ...)
and of every VM builtin (allocation, reshape, checks), whose times are summed into one row.

Mapping back: the Relax importer emits the network's operators in the ONNX graph's order, and
neither the default CPU pipeline nor the fused epilogues of the CPU schedules reorder them or put
two convolutions into one function, so the k-th call that holds a ``conv2d`` is the k-th
convolution of the network in execution order. The convolutions of the architecture recorded in
the manifest are listed in that order from its PyTorch module (forward hooks on a meta-device
copy, which runs no arithmetic) and each call is matched to the earliest unplaced one of its
weight shape among the next ``WINDOW``: independent branches can run in another order in the
ONNX graph than in ``forward`` (mac_small's LR-ASPP head runs its low-level 1x1 conv before the
other; found at full size, calls 62 and 63); the
other calls (bias add, ReLU, residual add, pooling) belong to the module of the convolution they
follow. When the counts or a weight shape disagree (a pass or fusion changed the graph), no call
is placed rather than a wrong one. The instrument hook adds a little Python overhead per call;
the rows still say where the time goes between layers.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from pathlib import Path

BUILTIN = "vm.builtin"
WINDOW = 4  # how far ahead in forward order a convolution call may be matched


def tvm_rows(
    path: Path, manifest: dict, threads: int, runs: int, warmup: int, seed: int, per_run_stat: str = "mean"
) -> list:
    """(function, kind, ms per run (mean, or median of the runs), origin module name or None), in
    first-call order."""
    import tvm
    from tvm import relax

    from deploycc.core.numerics import TensorSpec, random_feeds

    from .measure import pin_threads, reduce_runs

    if "cuda" in manifest.get("backend_info", {}).get("target", ""):
        from deploycc.core.errors import UserError

        raise UserError(f"{path}: --profile times TVM artifacts on the CPU; this one is CUDA code")
    from deploycc.pipeline.runtime import open_artifact

    open_artifact(path, threads or None)  # hashes, host checks: as a normal run
    pin_threads("tvm", threads)
    dev = tvm.cpu()
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(path / "model.so")), dev)
    specs = [TensorSpec.from_dict(d) for d in manifest["inputs"]]
    args = [tvm.runtime.tensor(a, dev) for a in random_feeds(specs, seed).values()]
    calls: list[tuple[str, float, tuple | None]] = []
    started: list[int] = []

    def instrument(func, symbol, before_run, ret_value, *call_args):
        if before_run:
            started.append(time.perf_counter_ns())
        else:
            shapes = [tuple(a.shape) for a in call_args if hasattr(a, "shape")]
            calls.append(
                (str(symbol), (time.perf_counter_ns() - started.pop()) / 1e6, shapes[1] if len(shapes) > 1 else None)
            )
        return 0

    for _ in range(warmup):
        vm["main"](*args)
    vm.set_instrument(instrument)
    for _ in range(runs):
        vm["main"](*args)
    per_run = len(calls) // runs
    origins = _origins(calls[:per_run], manifest.get("architecture"))
    totals: OrderedDict[tuple, list[float]] = OrderedDict()
    for i, (symbol, ms, _) in enumerate(calls):
        name = BUILTIN if symbol.startswith(BUILTIN) else symbol
        key = (name, None if name == BUILTIN else origins[i % per_run])
        totals.setdefault(key, [0.0] * runs)[min(i // per_run, runs - 1)] += ms
    return [(name, _kind(name), reduce_runs(t, per_run_stat), origin) for (name, origin), t in totals.items()]


def _kind(symbol: str) -> str:
    """``conv2d3`` -> ``conv2d``: the op a PrimFunc was legalized from."""
    return symbol if symbol == BUILTIN else re.sub(r"\d+$", "", symbol)


def _is_conv(symbol: str) -> bool:
    """A call that computes one convolution: ``conv2d3``, or a fused ``fused_conv2d_add_relu2``."""
    return "conv2d" in symbol and not symbol.startswith(BUILTIN)


def _origins(calls: list, arch: dict | None) -> list[str | None]:
    """The exported module name ("/encoder/residuals.3/conv1") each call of one run belongs to."""
    convs = _conv_modules(arch) if arch else None
    conv_calls = [c for c in calls if _is_conv(c[0])]
    if not convs or len(convs) != len(conv_calls):
        return [None] * len(calls)
    unused = list(convs)
    out, current = [], None
    for symbol, _, weight in calls:
        if _is_conv(symbol):
            # the earliest unplaced convolution of this weight shape among the next few: the ONNX
            # graph may order independent branches (LR-ASPP's two 1x1 heads) unlike forward()
            match = next(
                (i for i, (_, shape, groups) in enumerate(unused[:WINDOW]) if _same_weight(shape, groups, weight)),
                None,
            )
            if match is None:
                return [None] * len(calls)
            current = unused.pop(match)[0]
        out.append(current)
    return out


def _same_weight(shape: tuple, groups: int, called: tuple | None) -> bool:
    """Whether a call's weight ``called`` is the conv weight ``shape`` (OIHW, ``groups``): as is,
    or packed for the blocked layout (``targets/tvm/blocked_compute.py``: dense and grouped
    (OCB, ICB, KH, KW, x, x), or (OCB, ICB / groups, ...) where the groups are whole blocks, a
    stem's (OCB, I, KH, KW, x), depthwise (CB, KH, KW, x))."""
    if called is None or tuple(called) == tuple(shape):
        return called is not None
    o, ig, kh, kw = shape
    lanes = called[-1]
    ob, cin = -(-o // lanes), ig * groups
    blocked = {
        (ob, -(-cin // lanes), kh, kw, lanes, lanes),
        (ob, cin, kh, kw, lanes),
        (ob, ig // lanes, kh, kw, lanes, lanes),
    }
    if ig == 1 and groups == o:
        blocked.add((ob, kh, kw, lanes))
    return tuple(called) in blocked


def _conv_modules(arch: dict) -> list[tuple[str, tuple, int]]:
    """(exported name, weight shape, groups) of every Conv2d of ``arch`` in forward order."""
    import torch
    from torch import nn

    from deploycc.models import build_module, parse_arch

    a = parse_arch(arch, source="manifest")
    net = build_module(a).to("meta")
    seen: list[tuple[str, tuple, int]] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: seen.append((_exported(n), tuple(m.weight.shape), m.groups)))
        for n, m in net.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            net(torch.zeros(tuple(a.input_shape), device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return seen


def _exported(module_name: str) -> str:
    """``encoder.residuals.3.conv1`` -> ``/encoder/residuals.3/conv1``, the exporter's spelling."""
    parts: list[str] = []
    for p in module_name.split("."):
        if p.isdigit() and parts:
            parts[-1] += f".{p}"
        else:
            parts.append(p)
    return "/" + "/".join(parts)
