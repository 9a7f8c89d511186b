"""Legality rules of accelerators (Xavier DLA, NPUs) as data, and their evaluation per node.

A target file's ``[legality]`` table names the accelerator and the fallback unit and holds one
sub-table per layer family. Convolution rules (``[legality.conv]``), from TensorRT 8.5's
``NvInfer.h`` for the Xavier DLA (docs/targets.md, "Legality rules")::

    kernel = [1, 32]            # each kernel dimension, inclusive range
    stride = [1, 8]
    dilation = [1, 32]
    padding = [0, 31]           # each pad value
    padding_less_than_kernel = true   # every pad < the (undilated) kernel size along its axis
    max_groups = 8192
    max_output_channels = 8192

``native_dilated_conv`` (top level of ``[legality]``, default true) says whether the target runs
a legal dilated conv natively; rewrite-dilated leaves those alone unless ``--force``.
``conv_violations`` returns the list of broken rules (empty = legal): data, not exceptions.
"""

from __future__ import annotations

from deploycc.core.conv import ConvGeometry


def conv_violations(g: ConvGeometry, rules: dict) -> list[str]:
    """Each conv rule of ``rules`` that ``g`` breaks, as a short sentence."""
    if not rules:
        return []
    bad: list[str] = []
    bad += _range("kernel", g.kernel, rules.get("kernel"))
    bad += _range("stride", g.strides, rules.get("stride"))
    bad += _range("dilation", g.dilations, rules.get("dilation"))
    bad += _range("padding", g.pads, rules.get("padding"))
    if rules.get("padding_less_than_kernel"):
        n = len(g.kernel)
        for axis in range(n):
            for pad in (g.pads[axis], g.pads[axis + n]):
                if pad >= g.kernel[axis]:
                    bad.append(f"padding {pad} is not less than kernel size {g.kernel[axis]} on axis {axis}")
                    break
    if "max_groups" in rules and g.group > rules["max_groups"]:
        bad.append(f"groups {g.group} > {rules['max_groups']}")
    if "max_output_channels" in rules and g.out_channels > rules["max_output_channels"]:
        bad.append(f"output channels {g.out_channels} > {rules['max_output_channels']}")
    return bad


def _range(what: str, values, bounds) -> list[str]:
    if not bounds:
        return []
    lo, hi = bounds
    off = [v for v in values if not lo <= v <= hi]
    return [f"{what} {list(values)} outside [{lo}, {hi}]"] if off else []


# --- Other layer families (same shape of data: each returns the broken rules as sentences) -------
#
# ``[legality] ops = [...]`` lists the ONNX op types the accelerator implements at all; any other
# op falls back (``ops`` absent: every op is a candidate). Ops in ``NOT_LAYERS`` never become a
# layer (the builders fold them) and are reported as such. Per-family tables:
#
#     [legality.pool]      window = [1, 8]; stride = [1, 16]; padding = [0, 7]
#                          (GlobalAveragePool/GlobalMaxPool: the window is the whole input plane)
#     [legality.resize]    nearest_scale = [1, 32]; linear_scale = [1, 4]   # integer scales only
#                          linear_coordinate_modes = ["half_pixel", "pytorch_half_pixel"]
#                          nearest_coordinate_modes = [...]  (absent: any)
#                          by_sizes = false      # a Resize given output sizes (TensorRT
#                                                # setOutputDimensions) is not legal
#     [legality.softmax]   supported = false; reason = "On Xavier, this layer is not supported on DLA"
#     [legality.elementwise] ops = ["Add", "Sub", "Mul", "Max", "Min"]
#     [legality.concat]    axes = [1]            # channel axis only
#     [legality.deconv]    dilation = [1, 1]; padding = [0, 0]; max_groups = 1

NOT_LAYERS = frozenset({"Constant", "Identity", "Shape", "ConstantOfShape"})
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"})


def pool_violations(window, stride, pads, rules: dict) -> list[str]:
    """The ``[legality.pool]`` rules a pooling window/stride/pads breaks."""
    if not rules:
        return []
    return (
        _range("pooling window", window, rules.get("window"))
        + _range("pooling stride", stride, rules.get("stride"))
        + _range("pooling padding", pads, rules.get("padding"))
    )


def resize_violations(mode: str, coordinate_mode: str, scales, by_sizes: bool, rules: dict) -> list[str]:
    """The ``[legality.resize]`` rules broken by a Resize with these attributes and spatial ``scales``."""
    if not rules:
        return []
    bad: list[str] = []
    if by_sizes and rules.get("by_sizes") is False:
        bad.append("resize given by output sizes (TensorRT setOutputDimensions) is not supported")
    kind = "nearest" if mode == "nearest" else "linear" if mode == "linear" else mode
    if f"{kind}_scale" not in rules:
        return [*bad, f"resize mode {mode!r} is not supported"]
    modes = rules.get(f"{kind}_coordinate_modes")
    if modes and coordinate_mode not in modes:
        bad.append(
            f"{kind} resize with coordinate_transformation_mode {coordinate_mode!r} (supported: {', '.join(modes)})"
        )
    if scales is None:
        return [*bad, "resize scale unknown (no static shapes)"]
    if any(abs(s - round(s)) > 1e-6 for s in scales):
        bad.append(f"resize scales {[round(s, 4) for s in scales]} are not integers")
    else:
        bad += _range(f"{kind} resize scale", [round(float(s)) for s in scales], rules[f"{kind}_scale"])
    return bad


def softmax_violations(rules: dict) -> list[str]:
    if rules and rules.get("supported") is False:
        return [rules.get("reason", "softmax is not supported")]
    return []


def elementwise_violations(op: str, rules: dict) -> list[str]:
    if rules and "ops" in rules and op not in rules["ops"]:
        return [f"element-wise {op} is not supported (supported: {', '.join(rules['ops'])})"]
    return []


def concat_violations(axis: int, rank: int, rules: dict) -> list[str]:
    axis = axis + rank if axis < 0 else axis
    if rules and "axes" in rules and axis not in rules["axes"]:
        return [f"concatenation on axis {axis} (supported axes: {rules['axes']})"]
    return []


def deconv_violations(g: ConvGeometry, rules: dict) -> list[str]:
    if not rules:
        return []
    bad = _range("deconvolution dilation", g.dilations, rules.get("dilation"))
    bad += _range("deconvolution padding", g.pads, rules.get("padding"))
    if "max_groups" in rules and g.group > rules["max_groups"]:
        bad.append(f"deconvolution groups {g.group} > {rules['max_groups']}")
    return bad
