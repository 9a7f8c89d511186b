"""The rewrite of ``blocked_layout``: the imported Relax ``main`` walked binding by binding, each
op that can run in NCHW[x]c emitted on the blocked tensors (``blocked_compute``'s kernels for the
convolutions, the same Relax op for pooling and element-wise ops), every other op fed the NCHW
tensor, unpacked once per tensor where it first needs it. Imports TVM: ``blocked_layout`` loads it
only when a target asks for the blocked layout.
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from . import blocked_compute as bc

_BINARY = ("relax.add", "relax.subtract", "relax.multiply", "relax.maximum", "relax.minimum")
_UNARY = ("relax.nn.relu", "relax.clip", "relax.sigmoid", "relax.tanh", "relax.nn.silu")
_POOLS = ("relax.nn.max_pool2d", "relax.nn.avg_pool2d")
# A grouped conv whose groups are whole blocks runs per group; one with at most this many groups
# whose groups are not runs as a dense blocked conv with zero weights outside the groups (groups x
# its MACs, exact): SqueezeNAS's group-2 1x1 convs have 8-48 channels per group, rarely a whole
# block, and a conv left NCHW costs a transform pair, two passes over its input and output.
MAX_DENSE_GROUPS = 4


def _shape(expr) -> list[int] | None:
    ty = getattr(expr, "ty", None)  # TVM 0.27: a Relax expression's type, TensorType(shape, dtype)
    dims = getattr(getattr(ty, "shape", None), "values", None)
    try:
        return [int(d) for d in dims] if dims is not None else None
    except TypeError:  # a symbolic dimension
        return None


def _constant(expr) -> np.ndarray | None:
    from tvm.ir import Constant

    if isinstance(expr, Constant) and hasattr(expr, "value") and hasattr(expr.value, "numpy"):
        return expr.value.numpy()
    return None


@relax.expr_functor.mutator
class Blocker(relax.PyExprMutator):
    """The rewrite: ``blocked`` maps an original NCHW var to (its blocked var, its channels)."""

    def __init__(self, mod, lanes: int):
        super().__init__(mod)
        self.lanes = lanes
        self.blocked: dict = {}
        self.flat: set = set()  # blocked vars already unpacked for an NCHW consumer
        self.counts: dict[str, int] = {}

    def visit_var_binding_(self, binding):
        value, made = binding.value, None
        if isinstance(binding.var, relax.DataflowVar) and isinstance(value, relax.Call):
            made = self._block(value)
        if made is None:
            self._unpack_inputs(value)
            super().visit_var_binding_(binding)
            return
        var, kind = made
        self.blocked[binding.var] = (var, _shape(binding.var)[1])  # type: ignore[index]
        self._count(kind)

    def _unpack_inputs(self, value) -> None:
        """Every blocked var ``value`` reads is unpacked for it (once per var: an exit transform)."""
        for var in relax.analysis.free_vars(value):
            if var in self.blocked and var not in self.flat:
                blocked, channels = self.blocked[var]
                flat = self.builder_.emit_te(bc.unpack, blocked, channels, primfunc_name_hint="unpack_nchwc")
                self.set_var_remap(var, flat)
                self.flat.add(var)
                self._count("exit transforms")

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _block(self, call):
        """(the blocked var emitted for ``call``, its kind) or None to leave it NCHW."""
        name = getattr(call.op, "name", "")
        if name == "relax.nn.conv2d":
            return self._conv(call)
        if name in _POOLS and self._is_blocked(call.args[0]):
            pooled = self._pool(call)
            return None if pooled is None else (pooled, "pool")
        if name in _UNARY and self._is_blocked(call.args[0]):  # clip's bounds kept as they are
            args = [self._packed(call.args[0]), *call.args[1:]]
            return self.builder_.emit(self._with_args(call, args)), "element-wise"
        if name == "relax.call_tir":
            return self._clip_bound(call)
        if name in _BINARY and any(self._is_blocked(a) for a in call.args):
            args = self._binary_operands(call)
            if args is not None:
                return self.builder_.emit(self._with_args(call, args)), "element-wise"
        return None

    def _clip_bound(self, call):
        """ONNX Clip with bound inputs, which TVM 0.27 imports as ``call_tir`` of TOPI's
        ``maximum`` / ``minimum`` with a scalar constant: the Relax op on the blocked tensor."""
        callee, (args, *_rest) = call.args[0], call.args[1:]
        kind = getattr(callee, "name_hint", "").rstrip("0123456789")
        ops = {"maximum": relax.op.maximum, "minimum": relax.op.minimum}
        if kind not in ops or len(args) != 2 or not self._is_blocked(args[0]):
            return None
        bound = _constant(args[1])
        if bound is None or bound.size != 1:
            return None
        scalar = relax.const(bound.reshape(()))
        return self.builder_.emit(ops[kind](self._blocked_var(args[0])[0], scalar)), "element-wise"

    def _is_blocked(self, expr) -> bool:
        return expr in self.blocked

    def _blocked_var(self, expr):
        return self.blocked[expr]

    def _packed(self, expr):
        """The blocked form of ``expr``: its blocked var, or NCHW packed here (an entry transform)."""
        if self._is_blocked(expr):
            return self._blocked_var(expr)[0]
        self._count("entry transforms")
        return self.builder_.emit_te(bc.pack, self.visit_expr(expr), self.lanes, primfunc_name_hint="pack_nchwc")

    @staticmethod
    def _with_args(call, args):
        return relax.Call(call.op, args, call.attrs)  # its type inferred again when emitted

    def _binary_operands(self, call):
        """The operands of a blocked binary op, or None where one cannot be blocked: every
        blocked operand must have the op's channels (a one-channel map broadcast over channels
        would read its padded lanes), a constant must broadcast per channel or as a scalar, an
        NCHW operand must have the shape of the blocked one or one value per channel."""
        blocked = [self._blocked_var(a) for a in call.args if self._is_blocked(a)]
        channels = blocked[0][1]
        if any(c != channels for _, c in blocked):
            return None
        shape = next(_shape(a) for a in call.args if self._is_blocked(a))
        plan: list = []
        for arg in call.args:
            const = _constant(arg)
            if self._is_blocked(arg):
                plan.append("blocked")
            elif const is not None:
                packed = bc.pack_channel_constant(const, channels, self.lanes)
                if packed is None:
                    return None
                plan.append(relax.const(packed.astype(const.dtype)))
            elif shape is not None and _shape(arg) in (shape, [shape[0], channels, 1, 1]):
                plan.append("pack")  # same shape, or one value per channel (a gate)
            else:
                return None
        return [
            self._blocked_var(a)[0] if p == "blocked" else self._packed(a) if p == "pack" else p
            for a, p in zip(call.args, plan)
        ]

    def _pool(self, call):
        a = call.attrs
        if a.layout != "NCHW" or (a.out_layout or "NCHW") != "NCHW":
            return None
        op = relax.op.nn.max_pool2d if call.op.name.endswith("max_pool2d") else relax.op.nn.avg_pool2d
        layout = f"NCHW{self.lanes}c"
        return self.builder_.emit(
            op(
                self._blocked_var(call.args[0])[0],
                pool_size=a.pool_size,
                strides=a.strides,
                padding=a.padding,
                dilation=a.dilation,
                ceil_mode=a.ceil_mode,
                count_include_pad=a.count_include_pad,
                layout=layout,
                out_layout=layout,
            )
        )

    def _conv(self, call):
        """A dense, grouped or depthwise fp32 conv2d with constant weights, blocked; else None."""
        a, weight = call.attrs, _constant(call.args[1])
        shape = _shape(call.args[0])
        layouts = (a.data_layout, a.kernel_layout, a.out_layout or a.data_layout)
        if weight is None or weight.dtype != np.float32 or str(a.out_dtype or "float32") != "float32":
            return None
        if shape is None or layouts != ("NCHW", "OIHW", "NCHW"):
            return None
        geometry = {
            "strides": [int(s) for s in a.strides],
            "pads": [int(p) for p in a.padding],
            "dilation": [int(d) for d in a.dilation],
        }
        return self._conv_kernel(call.args[0], shape[1], weight, int(a.groups), geometry)

    def _conv_kernel(self, data, cin: int, weight: np.ndarray, groups: int, geometry: dict):
        """(the blocked conv's var, its kind) for each form ``blocked_compute`` has, or None."""
        lanes, cout = self.lanes, weight.shape[0]
        emit = self.builder_.emit_te
        if groups == 1 and not self._is_blocked(data) and cin < lanes:
            w = relax.const(bc.pack_stem_weight(weight, lanes))
            x = self.visit_expr(data)
            return emit(bc.conv_from_nchw, x, w, primfunc_name_hint="conv2d_nchw_in_nchwc", **geometry), (
                "conv (NCHW input)"
            )
        depthwise = groups == cin == cout and weight.shape[1] == 1
        if depthwise:
            w = relax.const(bc.pack_depthwise_weight(weight, lanes))
            name = "depthwise_conv2d_nchwc"
            return emit(bc.depthwise_blocked, self._packed(data), w, primfunc_name_hint=name, **geometry), (
                "depthwise conv"
            )
        if groups > 1 and (cin // groups) % lanes == 0 and (cout // groups) % lanes == 0:
            w = relax.const(bc.pack_dense_weight(weight, lanes))
            name = "grouped_conv2d_nchwc"
            x = self._packed(data)
            return emit(bc.conv_blocked_grouped, x, w, primfunc_name_hint=name, groups=groups, **geometry), (
                "grouped conv (whole blocks)"
            )
        if groups <= MAX_DENSE_GROUPS:
            w = relax.const(bc.pack_dense_weight(bc.block_diagonal(weight, groups), lanes))
            kind = "conv" if groups == 1 else "grouped conv (block-diagonal)"
            return emit(bc.conv_blocked, self._packed(data), w, primfunc_name_hint="conv2d_nchwc", **geometry), kind
        return None
