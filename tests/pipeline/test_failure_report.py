"""A failed build says which check failed and where: the ``--json`` result and the HTML report.

The golden model overflows float16 at one known layer (``big``: ReLU output times 1e5, above
float16's 65504), so the FP16 simulation of kirin970-npu's NNAPI run fails there while every layer
before it holds; the per-layer comparison must name ``big``.
"""

from __future__ import annotations

import json
import re

import onnx
from helpers import make_model, run_cli

OVERFLOW = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,8,8] image) => (float[1,4,8,8] logits) <float[1] huge = {100000.0}>
{ c = Conv<pads=[1,1,1,1]>(image, w)
  r = Relu(c)
  big = Mul(r, huge)
  logits = Add(big, r) }"""


def _overflowing_model(tmp_path):
    path = tmp_path / "overflow.onnx"
    onnx.save(make_model(OVERFLOW, {"w": (4, 3, 3, 3)}), path)
    return path


def test_failed_build_json_names_the_check_and_the_first_bad_layer(tmp_path, capsys):
    out, report = tmp_path / "art", tmp_path / "build.html"
    code = run_cli(
        ["build", _overflowing_model(tmp_path), "-t", "kirin970-npu", "-o", out, "--json", "--report", report]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert not out.exists()
    data = json.loads(captured.out)
    assert data["ok"] is False and data["written"] is False and data["files"] == {}
    failure = data["failure"]
    assert failure["check"] == "numerics"
    layers = failure["layers"]
    assert layers["first_bad"]["tensor"] == "big" and layers["first_bad"]["op"] == "Mul"
    assert [r["tensor"] for r in layers["rows"]][:2] == ["c", "r"] and all(r["ok"] for r in layers["rows"][:2])
    assert "float16" in layers["subject"]
    assert "first layer out of tolerance: 'big'" in failure["reason"]
    assert "'big'" in captured.err  # the error line names it too

    page = report.read_text()
    assert re.search(r"<h1>[^<]*<span class='badge verdict' data-verdict='failed'", page)
    sections = re.findall(r"data-section='([^']*)'", page)
    assert sections[0] == "Failed check"
    assert "none written: the check numerics failed" in page
    assert str(out) not in re.sub(r"the output path [^ ]+ was left", "", page)  # never offered as a folder


def test_failed_build_without_json_prints_no_result(tmp_path, capsys):
    assert run_cli(["build", _overflowing_model(tmp_path), "-t", "kirin970-npu", "-o", tmp_path / "art"]) == 1
    captured = capsys.readouterr()
    assert "first layer out of tolerance: 'big'" in captured.err
    assert not captured.out.strip().startswith("{")


CHAIN = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,8,8] image) => (float[1,4,8,8] logits) <float[1,4,1,1] s = {{{s}}}>
{{ c = Add(image, b)
  r = Relu(c)
  m = Mul(r, s)
  logits = Sigmoid(m) }}"""


def test_failed_verify_names_the_layer_where_artifact_and_reference_part(tmp_path, capsys):
    """The reference differs from the built model in one constant (the Mul's scale of channel 3). No
    Conv: ONNX Runtime's optimized model.onnx would fuse it with what follows and rename the values
    (they would be listed as unmatched)."""
    built, reference = tmp_path / "built.onnx", tmp_path / "reference.onnx"
    onnx.save(make_model(CHAIN.format(s="0.5, 0.5, 0.5, 0.5"), {"b": (1, 4, 1, 1)}), built)
    onnx.save(make_model(CHAIN.format(s="0.5, 0.5, 0.5, 0.6"), {"b": (1, 4, 1, 1)}), reference)
    assert run_cli(["build", built, "-t", "cpu-ort", "-o", tmp_path / "art"]) == 0
    capsys.readouterr()
    assert run_cli(["verify", tmp_path / "art", "--reference", reference, "--json"]) == 1
    captured = capsys.readouterr()
    layers = json.loads(captured.out)["numerics"]["layers"]
    assert layers["first_bad"]["tensor"] == "m"
    assert all(r["ok"] for r in layers["rows"] if r["tensor"] in ("c", "r"))
    assert "first layer out of tolerance: 'm'" in " ".join(captured.err.split())
