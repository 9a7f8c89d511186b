"""Standalone head modules (everything after the last searchable layer) for profiling."""

from __future__ import annotations

import torch
from torch import nn

from .spaces import SQUEEZENAS_BACKBONES, halved, layer_plan


class SqueezeNASHead(nn.Module):
    """Optional ``last_conv`` of the encoder followed by the decoder; forward(high, low)."""

    def __init__(self, arch, layers):
        super().__init__()
        from .squeezenas import SqueezeNAS

        net = SqueezeNAS(
            arch.backbone,
            arch.head,
            list(arch.genotype) or ["skip"] * len(layer_plan("squeezenas", arch.backbone)),
            arch.num_classes,
        )
        self.last_conv = net.encoder.last_conv
        self.decoder = net.decoder
        self.out_hw = (arch.input_shape[2], arch.input_shape[3])
        bb = SQUEEZENAS_BACKBONES[arch.backbone]
        last, low = layers[-1], layers[bb.low_level_unit]
        hi_h, hi_w = (halved(last.in_h), halved(last.in_w)) if last.stride == 2 else (last.in_h, last.in_w)
        lo_h, lo_w = (halved(low.in_h), halved(low.in_w)) if low.stride == 2 else (low.in_h, low.in_w)
        self.input_shapes = [(1, last.c_out, hi_h, hi_w), (1, low.c_out, lo_h, lo_w)]

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        if self.last_conv is not None:
            high = self.last_conv(high)
        return self.decoder(high, low, self.out_hw)


def standalone_head(arch, layers) -> nn.Module:
    if arch.space == "squeezenas":
        return SqueezeNASHead(arch, layers)
    if arch.space == "fbnet":
        from .fbnet import FBNetHead

        head = FBNetHead(layers[-1].c_out, arch.num_classes)
        last = layers[-1]
        hw = (halved(last.in_h), halved(last.in_w)) if last.stride == 2 else (last.in_h, last.in_w)
        head.input_shapes = [(1, last.c_out, *hw)]
        return head
    from deploycc.core.errors import UserError

    raise UserError(f"{arch.name}: squeezenet has no separate head (no searchable layers)")
