"""ONNX export of an architecture: named input ``image``, output ``logits``, static shapes.

Eval-mode BatchNorm is kept as ``BatchNormalization`` nodes (``TrainingMode.PRESERVE`` on an
eval-mode module stops the exporter's eval-time BN folding); the arch JSON and preprocessing are
recorded in ``metadata_props`` (``deploycc.arch``, ``deploycc.preprocessing``).  Without
``weights`` the module is random-initialised under ``torch.manual_seed(0)`` (reproducible).
The file is written to a temporary name in the destination folder and renamed into place.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import onnx
import torch

from deploycc.core.errors import UserError
from deploycc.core.outputs import staged_file

from .arch import Architecture

INPUT_NAME, OUTPUT_NAME = "image", "logits"
MIN_OPSET = 17


def _module(arch: Architecture, weights):
    from .builders import build_module
    from .weights import load_weights, randomize

    torch.manual_seed(0)
    module = build_module(arch)
    if weights is not None:
        load_weights(module, weights)
    else:
        randomize(module, seed=0)
    return module.eval()


def build_for_export(arch: Architecture, weights=None):
    """The exact eval-mode module ``export_onnx`` traces (seeded init or loaded weights)."""
    return _module(arch, weights)


def _inline_identities(model: onnx.ModelProto) -> None:
    """Replace ``Identity(initializer)`` nodes (the exporter's initializer de-duplication) by
    their own initializer copies, so every Conv/BN reads an initializer directly."""
    inits = {t.name: t for t in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if (
            node.op_type == "Identity"
            and node.input[0] in inits
            and node.output[0] not in {o.name for o in model.graph.output}
        ):
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            model.graph.initializer.append(copy)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _trace_to_proto(module, shape, opset: int) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(shape),),
            buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to a file object too
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            training=torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buf.getvalue())


def _set_metadata(model: onnx.ModelProto, arch: Architecture) -> None:
    meta = {
        "deploycc.arch": json.dumps(arch.to_dict(), sort_keys=True),
        "deploycc.preprocessing": json.dumps(arch.preprocessing.to_dict(), sort_keys=True),
    }
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "deploycc"


def export_onnx(
    arch: Architecture,
    out_path: str | os.PathLike,
    input_shape=None,
    weights: str | os.PathLike | None = None,
    opset: int = MIN_OPSET,
) -> Path:
    """Export ``arch`` (optionally at another ``input_shape``, with trained ``weights``)."""
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < MIN_OPSET:
        raise UserError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}")
    if input_shape is not None:
        try:
            shape_list = [int(v) if float(v) == int(v) else v for v in input_shape]
        except (TypeError, ValueError):
            raise UserError(f"input shape must be 4 integers [N, C, H, W], got {input_shape!r}") from None
        arch = arch.with_input_shape(shape_list)
    out = Path(out_path)
    if not out.parent.is_dir():
        raise UserError(f"{out}: output folder {out.parent} does not exist")
    model = _trace_to_proto(_module(arch, weights), arch.input_shape, opset)
    _inline_identities(model)
    _set_metadata(model, arch)
    with staged_file(out) as tmp:
        onnx.save(model, tmp)
    return out
