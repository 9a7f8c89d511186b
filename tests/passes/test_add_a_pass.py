"""docs/passes.md, "How to add a pass", followed step by step: the example pass is taken from the
document itself and written to a folder outside the repository; it is checked by the same manager
and oracle as the built-in passes, and a pass that breaks the numerics is named and refused."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap

import onnx
import pytest
from helpers import REPO, make_model, run_cli

from deploycc.passes import PASSES, PassContext, PassFailed, op_histogram, register_pass, run_passes

HOW_TO = (REPO / "docs" / "passes.md").read_text().split("## How to add a pass", 1)[1]
# Step 1: the document's own example: a file with a DeployPass subclass.
EXAMPLE = HOW_TO.split("```python", 1)[1].split("```", 1)[0]

WRONG = '''
import onnx_ir as ir

from deploycc.passes import DeployPass


class DropRelu(DeployPass):
    """A wrong pass: Relu is not the identity. The oracle must catch it."""

    name = "drop-relu"
    summary = "remove Relu nodes (wrong on purpose)"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        for node in [n for n in model.graph if n.op_type == "Relu" and not n.outputs[0].is_graph_output()]:
            node.outputs[0].replace_all_uses_with(node.inputs[0])
            model.graph.remove(node, safe=True)
            self.log.rewrite([node.name], "Relu removed")
        return ir.passes.PassResult(model, modified=True)
'''

MODEL = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,3,8,8] image) => (float[1,4,8,8] logits)
{ c = Conv<pads=[1,1,1,1]>(image, w)
  r = Relu(c)
  logits = Conv(r, w2) }"""
WEIGHTS = {"w": (4, 3, 3, 3), "w2": (4, 4, 1, 1)}

TARGET = """
name = "board-with-my-pass"
backend = "ort"
precision = "fp32"
passes = ["fold-bn", "relu-as-max"]
"""


@pytest.fixture
def my_passes(tmp_path):
    """Steps 1 and 2: the file written outside the repository, imported, its passes registered."""
    path = tmp_path / "my_passes.py"
    path.write_text(textwrap.dedent(EXAMPLE) + WRONG)
    spec = importlib.util.spec_from_file_location("my_passes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield register_pass(module.ReluAsMax), register_pass(module.DropRelu)
    for name in ("relu-as-max", "drop-relu"):
        PASSES.pop(name, None)
    sys.modules.pop("my_passes", None)


def test_step_3_run_passes_verifies_the_new_pass(my_passes):
    relu_as_max, _ = my_passes
    model, records = run_passes(make_model(MODEL, WEIGHTS), [relu_as_max(PassContext())])
    record = records[0]
    assert record.modified and record.oracle is not None and all(s.ok for s in record.verification)
    assert "Relu" not in op_histogram(model) and op_histogram(model)["Max"] == 1
    assert record.log.rewrites[0]["detail"] == "Relu -> Max(x, 0)"


def test_step_3_a_target_file_and_passes_name_it(my_passes, tmp_path, capsys):
    model, target, out = tmp_path / "m.onnx", tmp_path / "board.toml", tmp_path / "artifact"
    onnx.save(make_model(MODEL, WEIGHTS), model)
    target.write_text(TARGET)
    assert run_cli(["build", model, "--target", target, "-o", out]) == 0
    applied = json.loads((out / "manifest.json").read_text())["passes"]
    assert [p["name"] for p in applied] == ["fold-bn", "relu-as-max"] and applied[1]["modified"]
    capsys.readouterr()
    assert run_cli(["passes", "--json"]) == 0
    assert "relu-as-max" in {p["name"] for p in json.loads(capsys.readouterr().out)["passes"]}


def test_step_4_a_pass_that_changes_the_numerics_is_refused_by_name(my_passes):
    _, drop_relu = my_passes
    with pytest.raises(PassFailed, match=r"pass drop-relu changed the numerics of output 'logits'"):
        run_passes(make_model(MODEL, WEIGHTS), [drop_relu(PassContext())])


def test_a_name_already_taken_is_refused(my_passes):
    relu_as_max, _ = my_passes

    class Impostor(relu_as_max):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_pass(Impostor)
