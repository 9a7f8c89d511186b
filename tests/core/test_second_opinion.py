"""The second opinion on the reference: a graph ONNX Runtime gets wrong fails its build, named."""

from __future__ import annotations

import numpy as np
import onnx
from helpers import make_model, run_cli

from deploycc.pipeline.artifact import read_manifest

# ONNX's backend case test_resize_downsample_scales_linear_align_corners, as a graph with constants
RESIZE_ALIGN_CORNERS = """<ir_version: 8, opset_import: ["" : 17]>
g (float[1,1,2,4] x) => (float[1,1,1,2] y)
{ y = Resize<mode="linear", coordinate_transformation_mode="align_corners">(x, roi, scales) }"""


def _resize(tmp_path):
    model = make_model(RESIZE_ALIGN_CORNERS)
    model.graph.initializer.extend(
        [
            onnx.numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
            onnx.numpy_helper.from_array(np.array([1, 1, 0.6, 0.6], np.float32), "scales"),
        ]
    )
    onnx.save(model, tmp_path / "resize.onnx")
    return tmp_path / "resize.onnx"


def test_onnx_runtime_wrong_on_a_small_graph_fails_the_build(tmp_path, capsys):
    # ONNX Runtime 1.32 computes this Resize unlike ONNX's reference; the ORT artifact agrees with ORT
    assert run_cli(["build", _resize(tmp_path), "--target", "cpu-ort", "-o", tmp_path / "r"]) == 1
    err = capsys.readouterr().err
    assert "the reference itself is in doubt: ONNX Runtime and onnx.reference disagree on output 'y'" in err
    assert not (tmp_path / "r").exists()


def test_a_graph_both_agree_on_records_the_second_opinion(tmp_path):
    from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS

    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",)), tmp_path / "m.onnx")
    assert run_cli(["build", tmp_path / "m.onnx", "--target", "cpu-ort", "-o", tmp_path / "m.ort"]) == 0
    second = read_manifest(tmp_path / "m.ort")["verification"]["second_opinion"]
    assert second["status"] == "passed" and second["reference"] == "onnx.reference.ReferenceEvaluator"


def test_a_large_graph_records_the_second_opinion_as_not_run(tmp_path):
    from int8_nets import small_net

    from deploycc.core.loader import graph_inputs
    from deploycc.core.numerics import random_feeds, run_reference, value_specs
    from deploycc.core.second_opinion import second_opinion

    model = small_net()
    feeds = random_feeds(value_specs(graph_inputs(model)), 0)
    result = second_opinion(model, feeds, run_reference(model, feeds))
    assert result["status"] == "not_run" and "too large" in result["reason"] and result["needs"]
