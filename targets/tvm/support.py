"""What TVM 0.27's ONNX importer cannot compile, or compiles to something other than ONNX means.

``check_supported`` of the TVM backend refuses such a node in one line naming it, instead of a
traceback from deep inside the importer (or a numerics failure after a full build). Each rule
below was found with ONNX's own backend node tests and the importer's source
(``tvm/relax/frontend/onnx/onnx_frontend.py``, class ``Resize``, which has only ``_impl_v18``):

- Resize-10 has inputs (X, scales); the importer reads input 1 as ``roi`` and crashes.
- ``antialias``, ``axes`` and ``keep_aspect_ratio_policy`` (Resize-18) are ignored by the
  importer: the result would silently differ (axes and the policy change the output shape).
- ``half_pixel_symmetric`` is no coordinate mode of TOPI's resize: ValueError.
- ``align_corners`` to an output extent of 1 divides by zero (``(in - 1) / (out - 1)``).
- With ``scales``, ONNX maps coordinates with the given scale, TVM with in/out of the rounded
  output size: they differ whenever ``in * scale`` is not a whole number (e.g. 4 x 0.6). This
  holds for ``align_corners`` too: ONNX's reference maps 4 -> 3.2 columns (scale 0.8), TVM 4 -> 3
  (ONNX's ``test_resize_downsample_scales_cubic_align_corners``: 2.3952 where TVM gives 2.5).
- ``nearest`` rounds the source coordinate. Where the exact coordinate of an output pixel lies on
  a rounding boundary (a tie for ``round_prefer_*``, a whole number for ``floor``/``ceil``) and
  the in/out ratio is not a binary fraction, TVM's float32 arithmetic lands on either side of it
  (2 -> 7 rows, half_pixel: row 3 maps to 0.5 exactly; ONNX takes row 0, TVM row 1, in
  ``test_resize_upsample_sizes_nearest``). Exact ratios such as x2 or /4 are computed exactly.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

SCALE_MODES = (
    "half_pixel",
    "asymmetric",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
    "tf_crop_and_resize",
    "align_corners",
)  # where ONNX's coordinate mapping with ``scales`` uses the scale itself


def refusal(node: onnx.NodeProto, model: onnx.ModelProto, opset: int, shapes: dict) -> str | None:
    """Why TVM must not compile ``node`` (one sentence), or None."""
    if node.op_type == "Resize" and node.domain in ("", "ai.onnx"):
        return _resize(node, model, opset, shapes)
    return None


def shapes_of(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Static shapes of the model's values (shape inference; unknown dims are -1)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    out = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        out[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    return out


def _resize(node, model, opset: int, shapes: dict) -> str | None:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    text = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    if opset < 11:
        return f"Resize-{opset} (inputs X, scales) is read by TVM's importer as Resize-18 (X, roi, scales)"
    if text.get("antialias", 0):
        return "antialias=1 is ignored by TVM's importer (the result would differ from ONNX)"
    if "axes" in text:
        return "the axes attribute is ignored by TVM's importer"
    if text.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return f"keep_aspect_ratio_policy={text['keep_aspect_ratio_policy']} is ignored by TVM's importer"
    mode = text.get("coordinate_transformation_mode", "half_pixel")
    if mode == "half_pixel_symmetric":
        return "coordinate_transformation_mode=half_pixel_symmetric is not implemented by TVM's resize"
    in_shape = shapes.get(node.input[0])
    scales = _constant(model, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    sizes = _constant(model, node.input[3]) if len(node.input) > 3 and node.input[3] else None
    out_shape = shapes.get(node.output[0])
    if in_shape and min(in_shape) > 0 and (scales is not None and scales.size == len(in_shape)):
        out_shape = [int(np.floor(i * float(sc))) for i, sc in zip(in_shape, scales)]
    elif sizes is not None and sizes.size:
        out_shape = [int(v) for v in sizes]
    if (
        mode == "align_corners"
        and in_shape
        and out_shape
        and any(o == 1 and i > 1 for i, o in zip(in_shape[2:], out_shape[2:]))
    ):
        return "align_corners to an output extent of 1 divides by zero in TVM's resize"
    if text.get("mode", "nearest") == "nearest" and in_shape and out_shape and min(in_shape) > 0:
        rounding = text.get("nearest_mode", "round_prefer_floor")
        for axis, (i, o) in enumerate(zip(in_shape[2:], out_shape[2:]), start=2):
            scale = Fraction(float(scales[axis])) if scales is not None and scales.size else Fraction(o, i)
            hit = _nearest_boundary(i, o, scale, mode, rounding)
            if hit is not None:
                return (
                    f"nearest ({rounding}) output index {hit} of axis {axis} ({i} -> {o}) maps exactly onto a "
                    "rounding boundary, which TVM's float32 arithmetic may round to the other pixel"
                )
    if scales is not None and scales.size and mode in SCALE_MODES and in_shape and min(in_shape) > 0:
        exact = np.asarray(in_shape, dtype=np.float64) * scales.astype(np.float64)
        if not np.allclose(exact, np.round(exact), atol=1e-6):
            return (
                f"scales {scales.tolist()} do not give whole output sizes for input {in_shape}: ONNX maps "
                "coordinates with the given scale, TVM with the rounded size (pass sizes instead)"
            )
    return None


def _nearest_boundary(n_in: int, n_out: int, scale: Fraction, mode: str, rounding: str) -> int | None:
    """The first output index whose exact source coordinate (ONNX's formula for ``mode``) lies on a
    rounding boundary of ``rounding`` between two different pixels, when the in/out ratio is not a
    binary fraction (float32 computes binary fractions exactly); else None."""
    shift: Fraction | int
    offset: Fraction | int
    if mode == "align_corners":
        ratio, shift, offset = (Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)), 0, 0
    else:
        ratio = 1 / scale
        shift = Fraction(1, 2) if mode in ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn") else 0
        offset = -Fraction(1, 2) if mode in ("half_pixel", "pytorch_half_pixel") else 0
    if ratio.denominator & (ratio.denominator - 1) == 0:
        return None
    tie = rounding.startswith("round")
    for y in range(n_out):
        x = (y + shift) * ratio + offset
        if (x - Fraction(1, 2) if tie else x).denominator != 1:
            continue
        k = int(x - Fraction(1, 2)) if tie else int(x)
        low, high = (k, k + 1) if tie else ((k - 1, k) if rounding == "floor" else (k, k + 1))
        if min(max(low, 0), n_in - 1) != min(max(high, 0), n_in - 1):
            return y
    return None


def _constant(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None
