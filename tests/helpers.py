"""Test helpers importable from every test module (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.parser
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def make_model(
    text: str, weights: dict[str, tuple] | None = None, seed: int = 0, positive: tuple[str, ...] = ()
) -> onnx.ModelProto:
    """Parse ONNX text and add fixed-seed initializers of the given shapes."""
    model = onnx.parser.parse_model(text)
    rng = np.random.default_rng(seed)
    for name, shape in (weights or {}).items():
        array = rng.standard_normal(shape).astype(np.float32)
        if name in positive:
            array = np.abs(array) + 0.1
        model.graph.initializer.append(numpy_helper.from_array(array, name))
    return model


CONV_BN_RELU = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,16,16] image) => (float[1,8,16,16] logits)
{ c = Conv<pads=[1,1,1,1]>(image, w)
  bn = BatchNormalization<epsilon=1e-3>(c, s, b, m, v)
  logits = Relu(bn) }"""
CONV_BN_RELU_WEIGHTS = {"w": (8, 3, 3, 3), "s": (8,), "b": (8,), "m": (8,), "v": (8,)}


def run_cli(args: list) -> int:
    from deploycc.cli.main import main

    return main([str(a) for a in args])


def rich_tables(text: str) -> list[dict]:
    """The rich tables in ``text``: header lines and body lines split into stripped cells."""
    out, current, part = [], None, None
    for line in text.splitlines():
        if line.startswith("┏"):
            current, part = {"header": [], "body": []}, "header"
        elif current is not None and line.startswith("┡"):
            part = "body"
        elif current is not None and line.startswith("└"):
            out.append(current)
            current = None
        elif current is not None and line[:1] in ("┃", "│"):
            current[part].append([c.strip() for c in line[1:-1].split(line[0])])
    return out
