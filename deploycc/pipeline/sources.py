"""Turn what the user names as MODEL into a validated ONNX model.

MODEL is an ONNX file, an architecture file (``.json``) or the name of a zoo architecture; the
latter two are exported first (with ``--weights`` if given) into the build's scratch folder.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from deploycc.core.errors import UserError
from deploycc.core.loader import load_model


def is_architecture(model: str) -> bool:
    path = Path(model)
    if path.suffix == ".json":
        return True
    if path.suffix == ".onnx" or path.exists():
        return False
    from deploycc.models import zoo_names

    return model in zoo_names()


def load_source(
    model: str, scratch: Path, input_shape=None, weights: str | None = None
) -> tuple[onnx.ModelProto, Path]:
    """The validated ONNX model for MODEL, and the ONNX file it was read from."""
    if is_architecture(model):
        from deploycc.models import export_onnx, resolve_arch

        arch = resolve_arch(model)
        shape = input_shape if isinstance(input_shape, tuple) else None
        path = export_onnx(arch, scratch / f"{arch.name}.onnx", input_shape=shape, weights=weights)
        return load_model(path), path
    if weights:
        raise UserError("--weights applies to architecture files only; an ONNX model carries its own weights")
    return load_model(model, input_shape), Path(model)
