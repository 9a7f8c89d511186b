"""Every bad input to `deploycc build` is refused with exit 2, one line, and nothing at -o."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model, run_cli
from onnx import numpy_helper

from deploycc.core.errors import UserError
from deploycc.core.loader import load_model


def _refused(capsys, args, out, *needles):
    code = run_cli(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], err
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "staging folder left behind"
    return err


def test_missing_file(tmp_path, capsys):
    out = tmp_path / "out"
    _refused(capsys, ["build", tmp_path / "nope.onnx", "-o", out], out, "nope.onnx", "no such file")


def test_not_onnx(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not a protobuf\n" * 10)
    out = tmp_path / "out"
    _refused(capsys, ["build", bad, "-o", out], out, "bad.onnx", "not a valid ONNX model")


def test_truncated(tmp_path, tiny_onnx, capsys):
    data = tiny_onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    _refused(capsys, ["build", cut, "-o", out], out, "cut.onnx")


def test_checker_failure(tmp_path, capsys):
    model = make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",))
    model.graph.node[0].input[1] = "undefined_weight"
    path = tmp_path / "broken.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    _refused(capsys, ["build", path, "-o", out], out, "broken.onnx", "ONNX checker")


def test_dynamic_input_needs_shape(tmp_path, capsys):
    text = CONV_BN_RELU.replace("float[1,3,16,16] image", "float[N,3,H,W] image").replace(
        "float[1,8,16,16] logits", "float[N,8,H,W] logits"
    )
    path = tmp_path / "dyn.onnx"
    onnx.save(make_model(text, CONV_BN_RELU_WEIGHTS, positive=("v",)), path)
    out = tmp_path / "out"
    _refused(capsys, ["build", path, "-o", out, "-t", "cpu-ort"], out, "image", "dynamic", "--input-shape")
    assert run_cli(["build", path, "-o", out, "-t", "cpu-ort", "--input-shape", "2x3x8x12"]) == 0
    assert out.is_dir()


def test_input_shape_conflict(tmp_path, tiny_onnx):
    with pytest.raises(UserError, match="conflicts"):
        load_model(tiny_onnx, (1, 3, 32, 32))


def test_unsupported_op_names_node(tmp_path, capsys):
    text = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,8,8] image) => (float[1,3,8,8] y) { y = Celu<alpha=1.0>(image) }"""
    path = tmp_path / "celu.onnx"
    model = make_model(text)
    model.graph.node[0].name = "act_7"
    onnx.save(model, path)
    out = tmp_path / "out"
    _refused(capsys, ["build", path, "-o", out, "-t", "cpu"], out, "act_7", "Celu", "TVM")


def test_external_data_escaping_folder(tmp_path, capsys):
    model = make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",))
    inner = tmp_path / "model"
    inner.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.zeros(216, np.float32).tobytes())
    weight = next(t for t in model.graph.initializer if t.name == "w")
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", str(216 * 4))):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    path = inner / "ext.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    _refused(capsys, ["build", path, "-o", out], out, "ext.onnx", "outside the model's folder")


def test_nan_weights(tmp_path, capsys):
    model = make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",))
    w = next(t for t in model.graph.initializer if t.name == "w")
    array = numpy_helper.to_array(w).copy()
    array[0, 0, 0, 0] = np.nan
    array[1, 0, 0, 0] = np.inf
    w.CopyFrom(numpy_helper.from_array(array, "w"))
    path = tmp_path / "nan.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    _refused(capsys, ["build", path, "-o", out], out, "nan.onnx", "'w'", "NaN or Inf")


def test_unknown_target(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "out"
    _refused(capsys, ["build", tiny_onnx, "-o", out, "-t", "pdp11"], out, "unknown target 'pdp11'", "cpu-ort")


def test_bad_input_shape_option(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "out"
    _refused(capsys, ["build", tiny_onnx, "-o", out, "--input-shape", "1x3xbig"], out, "--input-shape")


@pytest.mark.parametrize(
    "mutation, needle",
    [
        (lambda d: d["genotype"].__setitem__(3, "k9e9"), "k9e9"),
        (lambda d: d["genotype"].pop(), "units"),
        (lambda d: d.__setitem__("num_classes", 0), "num_classes"),
    ],
)
def test_bad_architecture_file(tmp_path, capsys, mutation, needle):
    import json

    from deploycc.models import resolve_arch

    data = resolve_arch("mac_small").to_dict()
    mutation(data)
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    _refused(capsys, ["build", path, "-o", out], out, "arch.json", needle)


@pytest.mark.parametrize("group", [0, -1, 5])
def test_conv_group_must_divide_the_input_channels(tmp_path, group):
    model = make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",))
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("group", group))
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(UserError, match=f"has group {group}"):
        load_model(tmp_path / "m.onnx")
