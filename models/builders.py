"""PyTorch modules for architectures: whole networks, single candidate units, stems and heads (for
latency profiling), the searchable layers of an architecture and random legal genotypes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from deploycc.core.errors import UserError

from .arch import Architecture
from .spaces import SQUEEZENAS_BACKBONES, UNITS, halved, layer_plan, unit_problem

if TYPE_CHECKING:
    from torch import nn


def build_module(arch: Architecture):
    """The PyTorch network of ``arch`` in eval mode (random init; see ``load_weights``)."""
    if arch.space == "squeezenas":
        from .squeezenas import SqueezeNAS

        assert arch.backbone is not None and arch.head is not None, "a squeezenas architecture names both"
        net: nn.Module = SqueezeNAS(arch.backbone, arch.head, list(arch.genotype), arch.num_classes)
    elif arch.space == "fbnet":
        from .fbnet import FBNet

        net = FBNet(list(arch.genotype), arch.num_classes)
    else:
        from .squeezenet import SqueezeNet11

        net = SqueezeNet11(arch.num_classes)
    return net.eval()


def build_unit(space: str, code: str, c_in: int, c_out: int, stride: int):
    """One candidate unit as a standalone eval-mode module (for latency profiling)."""
    problem = unit_problem(space, code, c_in, c_out, stride) if space in UNITS else f"unknown space {space!r}"
    if problem or space == "squeezenet":
        raise UserError(f"cannot build {space} unit {code!r}: {problem or 'no searchable units'}")
    if space == "squeezenas":
        from .squeezenas_units import Unit

        return Unit(code, c_in, c_out, stride).eval()
    from .fbnet import FBNetUnit

    return FBNetUnit(code, c_in, c_out, stride).eval()


@dataclass(frozen=True)
class LayerInfo:
    """One searchable layer at the arch's input shape; ``unit`` is the arch's choice."""

    index: int
    c_in: int
    c_out: int
    stride: int
    in_h: int
    in_w: int
    unit: str

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.c_in, self.in_h, self.in_w)


def searchable_layers(arch: Architecture) -> list[LayerInfo]:
    """(index, C_in, C_out, stride, input H/W, unit) of each searchable layer (batch 1)."""
    h, w = halved(arch.input_shape[2]), halved(arch.input_shape[3])  # after the stride-2 stem
    out = []
    for i, ((ci, co, s), code) in enumerate(zip(layer_plan(arch.space, arch.backbone), arch.genotype)):
        out.append(LayerInfo(i, ci, co, s, h, w, code))
        if s == 2:
            h, w = halved(h), halved(w)
    return out


def sample_genotype(space: str, rng, backbone: str = "small") -> list[str]:
    """A uniformly random legal genotype; ``rng`` is a ``random.Random`` (or has ``.choice``)."""
    if space not in ("squeezenas", "fbnet"):
        raise UserError(f"space {space!r} has no searchable layers (use squeezenas or fbnet)")
    if space == "squeezenas" and backbone not in SQUEEZENAS_BACKBONES:
        raise UserError(f"unknown backbone {backbone!r} (valid: {', '.join(SQUEEZENAS_BACKBONES)})")
    geno = []
    for ci, co, s in layer_plan(space, backbone):
        legal = [c for c in UNITS[space] if unit_problem(space, c, ci, co, s) is None]
        geno.append(legal[int(rng.choice(range(len(legal))))])
    return geno


def build_stem(arch: Architecture):
    """The fixed layers before the first searchable layer (eval mode)."""
    if arch.space == "squeezenas":
        from .squeezenas import stem

        assert arch.backbone is not None, "a squeezenas architecture names its backbone"
        return stem(SQUEEZENAS_BACKBONES[arch.backbone].init_ch).eval()
    if arch.space == "fbnet":
        from .fbnet import fbnet_stem

        return fbnet_stem().eval()
    raise UserError(f"{arch.name}: squeezenet has no separate stem (no searchable layers)")


def build_head(arch: Architecture):
    """The fixed layers after the last searchable layer, as an eval-mode module.

    squeezenas: ``forward(high, low)`` where ``high`` is the last unit's output and ``low`` the
    low-level unit's output; its ``input_shapes`` attribute lists both shapes (batch 1).
    fbnet: ``forward(x)`` on the last unit's output (``input_shapes`` has one shape).
    """
    from .heads import standalone_head

    return standalone_head(arch, searchable_layers(arch)).eval()
