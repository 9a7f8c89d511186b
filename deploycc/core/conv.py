"""Convolution geometry: the one record of a conv's kernel, strides, dilations and pads, and ONNX's
auto_pad arithmetic. Legality rules (``deploycc.targets.legality``), the placement report and the
conv passes all read a conv through this record.

Output size per spatial axis: ``(I + pad_begin + pad_end - (k - 1) * d - 1) // s + 1``.

auto_pad (ONNX Conv, ConvTranspose's input side, pooling): SAME_UPPER / SAME_LOWER give an output
of ceil(I / s) with a total pad P = max(0, (ceil(I / s) - 1) * s + (k - 1) * d + 1 - I);
SAME_UPPER puts the odd pad at the end, SAME_LOWER at the start; VALID means no pad. Resolving it
needs the static input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np


@dataclass(frozen=True)
class ConvGeometry:
    """A conv's geometry with auto_pad resolved. ``pads`` are ONNX order: begins then ends."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads: tuple[int, ...]
    group: int = 1
    in_shape: tuple[int, ...] | None = None  # [N, C, spatial...] when static
    out_channels: int = 1

    @property
    def rank(self) -> int:
        return len(self.kernel)

    def pad(self, axis: int) -> tuple[int, int]:
        return self.pads[axis], self.pads[axis + self.rank]

    def out_size(self, axis: int) -> int | None:
        if self.in_shape is None:
            return None
        begin, end = self.pad(axis)
        return out_size(
            self.in_shape[2 + axis], self.kernel[axis], self.strides[axis], self.dilations[axis], begin, end
        )

    def macs(self) -> int | None:
        """N * Cout * out spatial * Cin/group * kernel taps, or None without static shapes."""
        if self.in_shape is None:
            return None
        outs = cast(list[int], [self.out_size(a) for a in range(self.rank)])  # in_shape is known: all ints
        cin_per_group = self.in_shape[1] // self.group
        return int(self.in_shape[0] * self.out_channels * np.prod(outs) * cin_per_group * np.prod(self.kernel))


def out_size(size: int, k: int, s: int, d: int, begin: int, end: int) -> int:
    return (size + begin + end - (k - 1) * d - 1) // s + 1


def same_pads(size: int, k: int, s: int, d: int, mode: str) -> tuple[int, int]:
    """(begin, end) pads that ONNX auto_pad ``mode`` (SAME_UPPER / SAME_LOWER) implies on one axis."""
    total = max(0, (-(-size // s) - 1) * s + (k - 1) * d + 1 - size)
    small, big = total // 2, total - total // 2
    return (small, big) if mode == "SAME_UPPER" else (big, small)


def resolve_pads(auto_pad: str, pads, spatial, kernel, strides, dilations) -> tuple[int, ...] | None:
    """Explicit ONNX-order pads for ``auto_pad``: SAME_* from the static ``spatial`` input sizes
    (None when they are unknown), VALID as zeros, NOTSET as ``pads`` (zeros when absent)."""
    rank = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        if spatial is None:
            return None
        pairs = [same_pads(spatial[a], kernel[a], strides[a], dilations[a], auto_pad) for a in range(rank)]
        return tuple(p[0] for p in pairs) + tuple(p[1] for p in pairs)
    if auto_pad == "VALID" or pads is None:
        return (0,) * (2 * rank)
    return tuple(int(p) for p in pads)
