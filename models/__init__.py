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

Modules: ``spaces`` (unit codes, layer plans, legality of a unit; pure Python), ``arch`` (the
architecture file format), ``catalog`` (the zoo and name resolution), ``builders`` (PyTorch
modules), ``squeezenas*``/``fbnet``/``squeezenet``/``heads`` (the networks), ``weights``,
``export`` (ONNX), ``macs_torch``. May import ``deploycc.core`` only.
"""

from __future__ import annotations

from .arch import Architecture, Preprocessing, load_arch, parse_arch, save_arch
from .builders import LayerInfo, build_head, build_module, build_stem, build_unit, sample_genotype, searchable_layers
from .catalog import resolve_arch, unit_codes, zoo_names, zoo_path

__all__ = [
    "Architecture",
    "LayerInfo",
    "Preprocessing",
    "build_head",
    "build_module",
    "build_stem",
    "build_unit",
    "count_macs",
    "export_onnx",
    "load_arch",
    "load_weights",
    "parse_arch",
    "resolve_arch",
    "sample_genotype",
    "save_arch",
    "searchable_layers",
    "unit_codes",
    "zoo_names",
    "zoo_path",
]


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
