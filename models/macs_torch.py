"""Independent MAC counter on the PyTorch module (forward hooks), to cross-check the engine.

Convention (SqueezeNAS): a Conv2d costs out_elements x kh x kw x C_in / groups; a Linear costs
out_elements x in_features.  Counting runs on the ``meta`` device, so full-size inputs are cheap.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class MacReport:
    """MACs per kind and per layer (qualified module name -> MACs)."""

    conv: int = 0
    linear: int = 0
    per_layer: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.conv + self.linear

    @property
    def gmacs_conv(self) -> float:
        return self.conv / 1e9


def _conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
    kh, kw = m.kernel_size
    return out.numel() * kh * kw * (m.in_channels // m.groups)


def count_macs(module: nn.Module, input_shape, on_meta: bool = True) -> MacReport:
    """Run one forward at ``input_shape`` and sum conv / linear MACs."""
    report = MacReport()
    net = copy.deepcopy(module).to("meta") if on_meta else module
    device = "meta" if on_meta else "cpu"
    hooks = []

    def hook(name):
        def fn(m, _inp, out):
            if isinstance(m, nn.Conv2d):
                macs = _conv_macs(m, out)
                report.conv += macs
            else:
                macs = out.numel() * m.in_features
                report.linear += macs
            report.per_layer[name] = report.per_layer.get(name, 0) + macs

        return fn

    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(tuple(input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
    return report
