"""Load an ONNX file and validate it before anything else touches it.

Checks, each failing with one line that names the file and what is wrong: the file exists and
parses as ONNX; external data stays inside the model's folder; the ONNX checker passes; every
graph input has a static shape (or one is given with ``--input-shape``) with positive dimensions;
strict shape inference passes; floating-point weights and Constant values are finite; the
tensors the shapes imply fit in this machine's memory (estimated from the shapes before anything
is allocated). External data must name a file inside the model's folder, with a numeric
offset and length that stay inside that file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from deploycc.core.errors import UserError, first_line
from deploycc.core.shapes import format_shape


def load_model(path: str | Path, input_shape=None) -> onnx.ModelProto:
    """Read, validate and (if asked) fix the input shapes of the ONNX model at ``path``."""
    path = Path(path)
    model = _read(path)
    _check_external_data(model, path)
    check_memory(model, path.name)  # from the shapes alone, before any external byte is read
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as exc:
        raise UserError(f"{path}: cannot read its external data: {first_line(exc)}") from None
    _check(model, path)
    _fix_input_shapes(model, path, input_shape)
    model = infer_shapes_strict(model, path.name)
    check_memory(model, path.name)
    _check_finite(model, path)
    _check_groups(model, path)
    return model


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The real inputs of the graph: those that are not initializers."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def infer_shapes_strict(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and plain RuntimeErrors
        raise UserError(f"{where}: shape inference failed: {first_line(exc)}") from None


def _read(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an ONNX file")
    if not path.is_file():  # a pipe or a device would be read forever
        raise UserError(f"{path}: not a regular file (a device, pipe or socket); give an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise UserError(f"{path}: not a valid ONNX model (cannot parse: {first_line(exc)})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise UserError(f"{path}: not a valid ONNX model (no graph or an empty one; truncated file?)")
    return model


def _check_external_data(model: onnx.ModelProto, path: Path) -> None:
    base = path.parent.resolve()
    for tensor in external_data_helper._get_all_tensors(model):
        if not external_data_helper.uses_external_data(tensor):
            continue
        try:
            info = external_data_helper.ExternalDataInfo(tensor)
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"{path}: tensor {tensor.name!r} has unreadable external data fields ({first_line(exc)})"
            ) from None
        location = Path(info.location)
        target = (base / location).resolve()
        if location.is_absolute() or os.path.commonpath([base, target]) != str(base):
            raise UserError(
                f"{path}: tensor {tensor.name!r} stores its data at {info.location!r}, "
                "outside the model's folder; refusing to read it"
            )
        if not target.is_file():
            raise UserError(f"{path}: external data file {info.location!r} of tensor {tensor.name!r} is missing")
        _check_span(tensor.name, info, target.stat().st_size, path)


def _check_span(name: str, info, size: int, path: Path) -> None:
    """The tensor's bytes (offset, length) lie inside its external data file."""
    offset = info.offset or 0
    length = info.length if info.length is not None else size - offset
    if offset < 0 or length < 0 or offset + length > size:
        raise UserError(
            f"{path}: tensor {name!r} reads bytes {offset}..{offset + length} of {info.location!r}, which has {size}"
        )


def _check(model: onnx.ModelProto, path: Path) -> None:
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise UserError(f"{path}: fails the ONNX checker: {first_line(exc)}") from None


def _fix_input_shapes(model: onnx.ModelProto, path: Path, input_shape) -> None:
    inputs = graph_inputs(model)
    wanted = _shapes_by_input(inputs, path, input_shape)
    for inp in inputs:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in wanted:
            shape = wanted[inp.name]
            if len(shape) != len(dims):
                raise UserError(
                    f"{path}: --input-shape {format_shape(shape)} has rank {len(shape)}, "
                    f"input {inp.name!r} has rank {len(dims)}"
                )
            for d, (dim, value) in enumerate(zip(dims, shape)):
                if dim.HasField("dim_value") and dim.dim_value != value:
                    raise UserError(
                        f"{path}: --input-shape {format_shape(shape)} conflicts with input "
                        f"{inp.name!r}, whose dimension {d} is fixed at {dim.dim_value}"
                    )
                dim.Clear()
                dim.dim_value = value
        bad = [d.dim_value for d in dims if d.HasField("dim_value") and d.dim_value <= 0]
        if bad:
            raise UserError(f"{path}: input {inp.name!r} has dimension {bad[0]}; every dimension must be >= 1")
        dynamic = [d.dim_param or "?" for d in dims if not d.HasField("dim_value")]
        if dynamic:
            raise UserError(
                f"{path}: input {inp.name!r} has dynamic dimension(s) {', '.join(dynamic)}; "
                "give a static shape with --input-shape (e.g. 1x3x1024x2048)"
            )


def _shapes_by_input(inputs, path: Path, input_shape) -> dict:
    if input_shape is None:
        return {}
    if isinstance(input_shape, dict):
        unknown = set(input_shape) - {i.name for i in inputs}
        if unknown:
            raise UserError(f"{path}: --input-shape names unknown input(s) {sorted(unknown)}")
        return dict(input_shape)
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise UserError(f"{path}: the model has {len(inputs)} inputs ({names}); use --input-shape name:1x3xHxW;...")
    return {inputs[0].name: tuple(input_shape)}


def _check_finite(model: onnx.ModelProto, path: Path) -> None:
    constants = [
        (f"Constant node {n.name or n.output[0]!r}", a.t)
        for n in model.graph.node
        if n.op_type == "Constant"
        for a in n.attribute
        if a.type == onnx.AttributeProto.TENSOR
    ]
    for what, tensor in [(f"weight {t.name!r}", t) for t in model.graph.initializer] + constants:
        if tensor.data_type not in _FLOAT_TYPES:
            continue
        try:
            array = numpy_helper.to_array(tensor)
        except Exception as exc:  # a raw_data length that does not match the dims
            raise UserError(f"{path}: {what} cannot be read ({first_line(exc)})") from None
        if not np.all(np.isfinite(array)):
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise UserError(f"{path}: {what} holds {bad} NaN or Inf value(s)")


def _check_groups(model: onnx.ModelProto, path: Path) -> None:
    """A Conv's ``group`` is >= 1 and divides its input channels (the ONNX checker and shape
    inference let ``group = 0`` through, and the reference implementation divides by it)."""
    channels = {
        v.name: v.type.tensor_type.shape.dim[1].dim_value
        for v in list(model.graph.input) + list(model.graph.value_info)
        if len(v.type.tensor_type.shape.dim) > 1 and v.type.tensor_type.shape.dim[1].HasField("dim_value")
    }
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        c_in = channels.get(node.input[0]) if node.input else None
        if group < 1 or (c_in and c_in % group):
            raise UserError(
                f"{path}: node {node.name or node.output[0]!r} ({node.op_type}) has group {group}, "
                f"which must be >= 1 and divide its {c_in} input channels"
            )


def check_memory(model: onnx.ModelProto, where: str, available: int | None = None) -> None:
    """Refuse a model whose tensors cannot fit in memory, from its shapes alone: the largest
    tensor three times over (a node's input, its output and a copy) plus every weight must fit in
    the memory this machine has available."""
    available = available if available is not None else available_memory()
    if available is None:
        return
    values = list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)
    largest, name = max(((_bytes_of(v.type.tensor_type), v.name) for v in values), default=(0, ""))
    weights = sum(_bytes_of_tensor(t) for t in model.graph.initializer)
    need = 3 * largest + weights
    if need > available:
        raise UserError(
            f"{where}: needs about {need / 2**30:.1f} GiB (tensor {name!r} alone is "
            f"{largest / 2**30:.1f} GiB) and this machine has {available / 2**30:.1f} GiB available; "
            "use a smaller --input-shape"
        )


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (bytes), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _bytes_of(tensor_type) -> int:
    dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor_type.shape.dim]
    return int(np.prod(dims, dtype=object)) * _itemsize(tensor_type.elem_type)


def _bytes_of_tensor(tensor) -> int:
    return int(np.prod(list(tensor.dims), dtype=object)) * _itemsize(tensor.data_type)


def _itemsize(elem_type: int) -> int:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except Exception:  # undefined or string types: count one byte
        return 1


_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
