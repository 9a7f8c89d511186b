"""FBNet search space (Wu et al., arXiv 1812.03443): 22 searchable layers, 9 candidates.

Block: 1x1 group conv-BN-ReLU, channel shuffle (groups 2), KxK depthwise conv-BN-ReLU,
1x1 group conv-BN, residual when stride 1 and C_in == C_out.  ``skip`` is the identity, or a
1x1 conv-BN-ReLU when the shape changes (as in FBNet's reference code).
"""

from __future__ import annotations

import torch
from torch import nn

from .spaces import FBNET_LAST, FBNET_STEM, FBNET_UNITS, layer_plan, unit_problem


class ChannelShuffle(nn.Module):
    """Interleave channel groups: (N, g, C/g, H, W) -> transpose -> (N, C, H, W)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.groups
        return x.reshape(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)


def conv_bn(
    c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, relu: bool = True
) -> list[nn.Module]:
    layers = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    return [*layers, nn.ReLU(inplace=False)] if relu else layers


class FBNetUnit(nn.Module):
    """One FBNet searchable layer (a candidate block at given channels and stride)."""

    def __init__(self, code: str, c_in: int, c_out: int, stride: int):
        super().__init__()
        problem = unit_problem("fbnet", code, c_in, c_out, stride)
        if problem:
            raise ValueError(f"fbnet unit: {problem}")
        spec = FBNET_UNITS[code]
        self.code = code
        self.residual = False
        if spec.is_skip:
            same = stride == 1 and c_in == c_out
            self.op = nn.Identity() if same else nn.Sequential(*conv_bn(c_in, c_out, 1, stride))
            return
        hidden = c_in * spec.expansion
        layers = conv_bn(c_in, hidden, 1, groups=spec.groups)
        if spec.groups > 1:
            layers.append(ChannelShuffle(spec.groups))
        layers += conv_bn(hidden, hidden, spec.kernel, stride, groups=hidden)
        layers += conv_bn(hidden, c_out, 1, groups=spec.groups, relu=False)
        self.op = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        return x + y if self.residual else y


def fbnet_stem() -> nn.Sequential:
    return nn.Sequential(*conv_bn(3, FBNET_STEM, 3, 2))


class FBNetHead(nn.Module):
    """1x1 conv-BN-ReLU to 1984, global average pool, fully connected classifier."""

    input_shapes: list[tuple[int, ...]]  # set by models.heads.standalone_head: the shape it is traced with

    def __init__(self, c_in: int, num_classes: int):
        super().__init__()
        self.conv = nn.Sequential(*conv_bn(c_in, FBNET_LAST, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(FBNET_LAST, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


class FBNet(nn.Module):
    """FBNet classifier: stem, 22 searched units, head; logits (N, num_classes)."""

    def __init__(self, genotype: list[str], num_classes: int = 1000):
        super().__init__()
        plan = layer_plan("fbnet")
        self.stem = fbnet_stem()
        self.units = nn.ModuleList(FBNetUnit(code, ci, co, s) for code, (ci, co, s) in zip(genotype, plan))
        self.head = FBNetHead(plan[-1][1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for unit in self.units:
            x = unit(x)
        return self.head(x)
