"""deploycc.models: architecture files, the SqueezeNAS / FBNet / SqueezeNet builders, the zoo.

Public API::

    load_arch(path) / parse_arch(dict, source) / save_arch(arch, path) -> Architecture
    resolve_arch(name_or_path) -> Architecture     # zoo name or .json path
    zoo_names() -> list[str];  zoo_path(name) -> Path
    build_module(arch) -> nn.Module                # eval mode, random init
    build_unit(space, code, c_in, c_out, stride) -> nn.Module
    build_stem(arch) / build_head(arch) -> nn.Module
    searchable_layers(arch) -> list[LayerInfo]
    sample_genotype(space, rng, backbone="small") -> list[str]
    load_weights(module, path);  export_onnx(arch, out, ...);  count_macs(module, shape)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploycc.errors import UserError

from .arch import Architecture, Preprocessing, load_arch, parse_arch, save_arch
from .spaces import SQUEEZENAS_BACKBONES, UNITS, layer_plan, unit_problem

ZOO_DIR = Path(__file__).resolve().parent / "zoo"

__all__ = [
    "Architecture", "Preprocessing", "LayerInfo", "load_arch", "parse_arch", "save_arch",
    "resolve_arch", "zoo_names", "zoo_path", "build_module", "build_unit", "build_stem",
    "build_head", "searchable_layers", "sample_genotype", "unit_codes", "load_weights",
    "export_onnx", "count_macs",
]


def zoo_names() -> list[str]:
    """Names of the bundled architectures (``models/zoo/*.json``)."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.json"))


def zoo_path(name: str) -> Path:
    """Path of a bundled architecture file; unknown name -> UserError listing the zoo."""
    p = ZOO_DIR / f"{name}.json"
    if name not in zoo_names():
        raise UserError(f"unknown zoo architecture {name!r} (zoo: {', '.join(zoo_names())})")
    return p


def resolve_arch(name_or_path: str | Path) -> Architecture:
    """A zoo name or a path to an architecture .json file."""
    s = str(name_or_path)
    if s in zoo_names():
        return load_arch(zoo_path(s))
    if s.endswith(".json") or Path(s).exists():
        return load_arch(s)
    raise UserError(f"{s!r} is neither a zoo architecture nor an existing .json file "
                    f"(zoo: {', '.join(zoo_names())})")


def unit_codes(space: str) -> list[str]:
    """The candidate unit codes of a search space."""
    return list(UNITS[space])


def build_module(arch: Architecture):
    """The PyTorch network of ``arch`` in eval mode (random init; see ``load_weights``)."""
    if arch.space == "squeezenas":
        from .squeezenas import SqueezeNAS
        net = SqueezeNAS(arch.backbone, arch.head, list(arch.genotype), arch.num_classes)
    elif arch.space == "fbnet":
        from .fbnet import FBNet
        net = FBNet(list(arch.genotype), arch.num_classes)
    else:
        from .squeezenet import SqueezeNet11
        net = SqueezeNet11(arch.num_classes)
    return net.eval()


def build_unit(space: str, code: str, c_in: int, c_out: int, stride: int):
    """One candidate unit as a standalone eval-mode module (for latency profiling)."""
    problem = unit_problem(space, code, c_in, c_out, stride) if space in UNITS else \
        f"unknown space {space!r}"
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


def _down(n: int) -> int:  # every stride-2 conv here: k odd, pad (k-1)/2*d (or 1x1, pad 0)
    return (n - 1) // 2 + 1


def searchable_layers(arch: Architecture) -> list[LayerInfo]:
    """(index, C_in, C_out, stride, input H/W, unit) of each searchable layer (batch 1)."""
    h, w = _down(arch.input_shape[2]), _down(arch.input_shape[3])  # after the stride-2 stem
    out = []
    for i, ((ci, co, s), code) in enumerate(zip(layer_plan(arch.space, arch.backbone),
                                                arch.genotype)):
        out.append(LayerInfo(i, ci, co, s, h, w, code))
        if s == 2:
            h, w = _down(h), _down(w)
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


def __getattr__(name: str):  # torch-heavy helpers, imported lazily
    if name == "load_weights":
        from .weights import load_weights
        return load_weights
    if name == "export_onnx":
        from .export import export_onnx
        return export_onnx
    if name == "count_macs":
        from .macs_torch import count_macs
        return count_macs
    raise AttributeError(name)
