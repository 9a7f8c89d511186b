"""SqueezeNAS networks: stem + searched units (+ last conv) encoder and an LR-ASPP/ASPP decoder.

Module names follow the published state dicts: ``encoder.conv1``, ``encoder.residuals.<i>``,
``encoder.last_conv`` (small only), ``decoder.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from .spaces import SQUEEZENAS_BACKBONES, layer_plan
from .squeezenas_heads import ASPP, LRASPP
from .squeezenas_units import Unit


def stem(c_out: int) -> nn.Sequential:
    """3x3 stride-2 conv (no bias) - BN - ReLU from RGB."""
    return nn.Sequential(
        nn.Conv2d(3, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=False)
    )


class Encoder(nn.Module):
    """Stem, the searched units, optional 1x1 conv-BN-ReLU; returns (high, low-level)."""

    def __init__(self, backbone: str, genotype: list[str]):
        super().__init__()
        bb = SQUEEZENAS_BACKBONES[backbone]
        plan = layer_plan("squeezenas", backbone)
        self.low_level_unit = bb.low_level_unit
        self.conv1 = stem(bb.init_ch)
        self.residuals = nn.ModuleList(Unit(code, ci, co, s) for code, (ci, co, s) in zip(genotype, plan))
        c_last = plan[-1][1]
        self.last_conv = None
        if bb.last_conv:
            self.last_conv = nn.Sequential(
                nn.Conv2d(c_last, bb.last_conv, 1, bias=False), nn.BatchNorm2d(bb.last_conv), nn.ReLU(inplace=False)
            )
            c_last = bb.last_conv
        self.out_channels = c_last
        self.low_channels = plan[bb.low_level_unit][1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(x)
        low = x
        for i, unit in enumerate(self.residuals):
            x = unit(x)
            if i == self.low_level_unit:
                low = x
        if self.last_conv is not None:
            x = self.last_conv(x)
        return x, low


def build_head(head: str, c_high: int, c_low: int, mid: int, num_classes: int) -> nn.Module:
    """The decoder module for ``head`` ('lraspp' or 'aspp')."""
    cls = LRASPP if head == "lraspp" else ASPP
    return cls(c_high, c_low, mid, num_classes)


class SqueezeNAS(nn.Module):
    """Segmentation net: logits at the input resolution, ``num_classes`` channels."""

    def __init__(self, backbone: str, head: str, genotype: list[str], num_classes: int = 19):
        super().__init__()
        self.encoder = Encoder(backbone, genotype)
        mid = SQUEEZENAS_BACKBONES[backbone].head_mid
        self.decoder = build_head(head, self.encoder.out_channels, self.encoder.low_channels, mid, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        high, low = self.encoder(x)
        return self.decoder(high, low, (int(x.shape[-2]), int(x.shape[-1])))
