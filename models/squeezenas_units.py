"""SqueezeNAS units: inverted residuals (kK eE [g2] [d2]) and skip, named like the published nets.

Attribute layout (matches the released state dicts): ``op`` is an ``nn.Sequential`` of
conv(0) BN(1) ReLU(2) dwconv(3) BN(4) ReLU(5) conv(6) BN(7); a skip unit's ``op`` is an
``nn.Identity``, a ReLU-conv-BN (``op.1``, ``op.2``) or a :class:`FactorizedReduce`.
"""

from __future__ import annotations

import torch
from torch import nn

from .spaces import SQUEEZENAS_UNITS, unit_problem


class FactorizedReduce(nn.Module):
    """ReLU, then two 1x1 stride-2 convs (the second on the input shifted by one pixel)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


def inverted_residual_op(
    c_in: int, c_out: int, stride: int, kernel: int, expansion: int, groups: int = 1, dilation: int = 1
) -> nn.Sequential:
    """1x1 group conv-BN-ReLU, KxK depthwise conv-BN-ReLU, 1x1 group conv-BN."""
    hidden = round(c_in * expansion)
    pad = (kernel - 1) // 2 * dilation
    return nn.Sequential(
        nn.Conv2d(c_in, hidden, 1, groups=groups, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=False),
        nn.Conv2d(hidden, hidden, kernel, stride=stride, padding=pad, dilation=dilation, groups=hidden, bias=False),
        nn.BatchNorm2d(hidden),
        nn.ReLU(inplace=False),
        nn.Conv2d(hidden, c_out, 1, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    )


def skip_op(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity, ReLU-1x1 conv-BN (channel change) or factorized reduce (stride 2)."""
    if stride == 2:
        return FactorizedReduce(c_in, c_out)
    if c_in != c_out:
        return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
    return nn.Identity()


class Unit(nn.Module):
    """One searchable layer; adds its input when stride 1 and C_in == C_out (not for skip)."""

    def __init__(self, code: str, c_in: int, c_out: int, stride: int):
        super().__init__()
        problem = unit_problem("squeezenas", code, c_in, c_out, stride)
        if problem:
            raise ValueError(f"squeezenas unit: {problem}")
        spec = SQUEEZENAS_UNITS[code]
        self.code = code
        if spec.is_skip:
            self.op = skip_op(c_in, c_out, stride)
            self.residual = False
        else:
            self.op = inverted_residual_op(c_in, c_out, stride, spec.kernel, spec.expansion, spec.groups, spec.dilation)
            self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        return x + y if self.residual else y
