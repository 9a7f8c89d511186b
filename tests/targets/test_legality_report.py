"""Per-node placement under a target's legality rules, before and after its passes."""

from __future__ import annotations

import json

import onnx
import pytest
from helpers import make_model, run_cli

from deploycc.targets import load_target
from deploycc.targets.legality import concat_violations, pool_violations, resize_violations, softmax_violations
from deploycc.targets.placement import placements, summary

DLA = load_target("xavier-dla-int8").legality

# One node per rule family: an ASPP-style dilated conv (pad 6 >= kernel 3), a legal conv, a 49 x 49
# average pool, a half-pixel x2 resize by scales (legal), an align_corners resize, a softmax, a
# ReduceMean (no DLA layer) and a channel concat.
HEAD = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,16,16] x)
  => (float[1,8,32,32] y, float[1,8,16,16] sm, float[1,4,1,1] m, float[1,4,1,1] pool, float[1,8,32,32] ac)
{ aspp = Conv<dilations=[6,6], pads=[6,6,6,6]>(x, w6)
  plain = Conv<pads=[1,1,1,1]>(x, w1)
  cat = Concat<axis=1>(aspp, plain)
  y = Resize<mode="linear", coordinate_transformation_mode="half_pixel">(cat, , scales)
  ac = Resize<mode="linear", coordinate_transformation_mode="align_corners">(cat, , scales)
  sm = Softmax<axis=1>(cat)
  m = ReduceMean<axes=[2,3]>(x)
  pool = AveragePool<kernel_shape=[16,16]>(x)
}"""


@pytest.fixture
def head():
    import numpy as np
    from onnx import numpy_helper

    model = make_model(HEAD, {"w6": (4, 4, 3, 3), "w1": (4, 4, 3, 3)})
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
    for _i, n in enumerate(model.graph.node):
        n.name = n.output[0]
    return model


def test_each_rule_family_decides_its_nodes(head):
    by = {p.node: p for p in placements(head, DLA)}
    assert by["aspp"].unit == "GPU" and by["aspp"].rule == "legality.conv"
    assert "padding 6 is not less than kernel size 3" in by["aspp"].reasons[0]
    assert by["plain"].unit == "DLA" and by["cat"].unit == "DLA" and by["y"].unit == "DLA"
    assert by["ac"].rule == "legality.resize" and "align_corners" in by["ac"].reasons[0]
    assert by["sm"].rule == "legality.softmax" and "Xavier" in by["sm"].reasons[0]
    assert by["m"].rule == "legality.ops" and by["pool"].rule == "legality.pool"
    assert summary(list(by.values()), DLA) == {
        "accelerator": "DLA",
        "fallback": "GPU",
        "layers": 8,
        "on_accelerator": 3,
        "fallbacks": 5,
    }


def test_rule_functions_read_the_documented_tables():
    assert pool_violations((8, 8), (1, 1), (0, 0, 0, 0), DLA["pool"]) == []
    assert pool_violations((9, 9), (1, 1), (0, 0, 0, 0), DLA["pool"])
    assert resize_violations("linear", "half_pixel", [4.0, 4.0], False, DLA["resize"]) == []
    assert any(
        "outside [1, 4]" in r for r in resize_violations("linear", "half_pixel", [8.0, 8.0], False, DLA["resize"])
    )
    assert any("not integers" in r for r in resize_violations("nearest", "asymmetric", [1.5, 2], False, DLA["resize"]))
    assert any("output sizes" in r for r in resize_violations("linear", "half_pixel", [2, 2], True, DLA["resize"]))
    assert softmax_violations({}) == [] and concat_violations(-1, 4, DLA["concat"])


def test_inspect_reports_before_and_after_the_targets_passes(head, tmp_path, capsys):
    path = tmp_path / "head.onnx"
    onnx.save(head, path)
    assert run_cli(["inspect", path, "--target", "xavier-dla-int8", "--json", "--no-layers"]) == 0
    rep = json.loads(capsys.readouterr().out)["legality"]
    before = {p["node"]: p for p in rep["before"]["nodes"]}
    assert before["aspp"]["unit"] == "GPU"
    assert rep["passes"] == ["fold-bn", "rewrite-dilated"]
    after_convs = [p for p in rep["after"]["nodes"] if p["op"] == "Conv"]
    assert all(p["unit"] == "DLA" for p in after_convs), after_convs  # the ASPP conv is DLA-legal now


def test_inspect_without_accelerator_says_so(head, tmp_path, capsys):
    path = tmp_path / "head.onnx"
    onnx.save(head, path)
    assert run_cli(["inspect", path, "--target", "cpu", "--json", "--no-layers"]) == 0
    assert "names no accelerator" in json.loads(capsys.readouterr().out)["legality"]["note"]
