"""Legality rules of accelerators (Xavier DLA, NPUs) as data, and their evaluation per node.

A target file's ``[legality]`` table names the accelerator and the fallback unit and holds one
sub-table per layer family. Convolution rules (``[legality.conv]``), from TensorRT 8.5's
``NvInfer.h`` for the Xavier DLA (toolchains.md §3.3)::

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

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvGeometry:
    """What the conv rules look at: per-axis kernel, stride, dilation, (begin, end) pads."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[int, ...]          # ONNX order: begins then ends
    group: int = 1
    out_channels: int = 1


def conv_violations(g: ConvGeometry, rules: dict) -> list[str]:
    """Each conv rule of ``rules`` that ``g`` breaks, as a short sentence."""
    if not rules:
        return []
    bad: list[str] = []
    bad += _range("kernel", g.kernel, rules.get("kernel"))
    bad += _range("stride", g.stride, rules.get("stride"))
    bad += _range("dilation", g.dilation, rules.get("dilation"))
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
