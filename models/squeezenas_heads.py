"""SqueezeNAS segmentation heads: LR-ASPP (small, large) and ASPP (xlarge).

LR-ASPP attribute names match the released state dicts (``_1x1_TL.conv/bn``, ``_1x1_BL``,
``_1x1_TR``, ``_1x1_BR``).  ASPP names are ours (no ASPP weights were published here).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Module):
    """Conv (no bias) - BN - ReLU with ``conv``/``bn``/``relu`` attribute names."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, padding: int = 0, dilation: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=padding, dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _hw(t: torch.Tensor) -> tuple[int, int]:
    return int(t.shape[-2]), int(t.shape[-1])


def resize(x: torch.Tensor, out_hw: tuple[int, int], mode: str, align_corners=None):
    """Resize to ``out_hw`` through a constant scale factor, so the ONNX ``Resize`` gets constant
    scales (``size=`` would export a Shape->Slice->Concat chain)."""
    h, w = _hw(x)
    if (h, w) == tuple(out_hw):
        return x
    scales = (out_hw[0] / h, out_hw[1] / w)
    if all(_exact(n, s, o) for n, s, o in zip((h, w), scales, out_hw)):
        return F.interpolate(x, scale_factor=scales, mode=mode, align_corners=align_corners)
    return F.interpolate(x, size=tuple(out_hw), mode=mode, align_corners=align_corners)


def _exact(n: int, scale: float, out: int) -> bool:
    """floor(n * scale) == out both in float64 (PyTorch) and float32 (ONNX Resize scales)."""
    return math.floor(n * scale) == out and math.floor(n * float(np.float32(scale))) == out


class LRASPP(nn.Module):
    """Lite R-ASPP on encoder output F (stride 16) and low-level feature L (stride 8)."""

    def __init__(self, c_high: int, c_low: int, mid: int, num_classes: int):
        super().__init__()
        self._1x1_TL = ConvBNReLU(c_high, mid)
        self.pool = nn.AvgPool2d(49, stride=(16, 20), count_include_pad=False)
        self._1x1_BL = nn.Conv2d(c_high, mid, 1, bias=True)
        self._1x1_TR = nn.Conv2d(mid, num_classes, 1, bias=True)
        self._1x1_BR = nn.Conv2d(c_low, num_classes, 1, bias=True)

    def forward(self, high: torch.Tensor, low: torch.Tensor, out_hw: tuple[int, int]):
        t = self._1x1_TL(high)
        p = torch.sigmoid(self._1x1_BL(self.pool(high)))
        p = resize(p, _hw(t), "bilinear", align_corners=False)
        u = resize(t * p, _hw(low), "bilinear", align_corners=False)
        y = self._1x1_TR(u) + self._1x1_BR(low)
        return resize(y, out_hw, "bilinear", align_corners=True)


class ASPP(nn.Module):
    """DeepLabV3+-style ASPP head with grouped dilated branches and a low-level decoder."""

    def __init__(self, c_high: int, c_low: int, mid: int, num_classes: int):
        super().__init__()
        self.b0 = ConvBNReLU(c_high, mid)
        self.b1 = ConvBNReLU(c_high, mid, 3, padding=6, dilation=6, groups=mid)
        self.b2 = ConvBNReLU(c_high, mid, 3, padding=12, dilation=12, groups=mid)
        self.b3 = ConvBNReLU(c_high, mid, 3, padding=18, dilation=18, groups=mid)
        self.project = ConvBNReLU(4 * mid + c_high, mid)
        self.low_conv = nn.Conv2d(c_low, c_low, 1, bias=True)
        self.dw = ConvBNReLU(mid + c_low, mid + c_low, 3, padding=1, groups=mid + c_low)
        self.classifier = nn.Conv2d(mid + c_low, num_classes, 1, bias=True)

    def forward(self, high: torch.Tensor, low: torch.Tensor, out_hw: tuple[int, int]):
        pooled = resize(high.mean(dim=(2, 3), keepdim=True), _hw(high), "nearest")
        x = torch.cat([self.b0(high), self.b1(high), self.b2(high), self.b3(high), pooled], 1)
        x = self.project(x)
        x = resize(x, _hw(low), "bilinear", align_corners=True)
        x = self.dw(torch.cat([x, self.low_conv(low)], 1))
        return resize(self.classifier(x), out_hw, "bilinear", align_corners=True)
