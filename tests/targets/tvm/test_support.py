"""The TVM backend refuses, in one line naming the node, the Resize attribute combinations its
ONNX importer crashes on or computes differently from ONNX; what it computes right still builds."""

from __future__ import annotations

import onnx
import onnx.parser
import pytest

pytest.importorskip("tvm")

from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.targets import load_target
from deploycc.targets.tvm.backend import TVMBackend


def _resize(attrs: str, shape="1,2,4,8", scales="1.0, 1.0, 2.0, 2.0", opset=18, sizes=None):
    second = (
        f"s = Constant <value = float[4] {{{scales}}}> ()"
        if sizes is None
        else f"s = Constant <value = int64[4] {{{sizes}}}> ()"
    )
    inputs = "(x, , s)" if sizes is None else "(x, , , s)"
    if opset < 11:
        inputs = "(x, s)"
    return onnx.parser.parse_model(f"""<ir_version: 8, opset_import: ["" : {opset}]>
    g (float[{shape}] x) => (float y) {{
      {second}
      y = Resize <{attrs}> {inputs}
    }}""")


REFUSED = {
    "antialias": (_resize('mode="linear", antialias=1', scales="1.0, 1.0, 0.5, 0.5"), "antialias"),
    "axes": (_resize('mode="linear", axes=[2, 3]', scales="2.0, 2.0"), "axes"),
    "keep_aspect_ratio_policy": (
        _resize('mode="linear", keep_aspect_ratio_policy="not_larger"', sizes="1, 2, 6, 6"),
        "keep_aspect_ratio_policy",
    ),
    "half_pixel_symmetric": (
        _resize('mode="linear", coordinate_transformation_mode="half_pixel_symmetric"'),
        "half_pixel_symmetric",
    ),
    "align_corners to 1": (
        _resize(
            'mode="linear", coordinate_transformation_mode="align_corners"',
            shape="1,1,2,4",
            scales="1.0, 1.0, 0.6, 0.6",
        ),
        "divides by zero",
    ),
    "cubic scale 0.8 of 4": (_resize('mode="cubic"', shape="1,1,4,4", scales="1.0, 1.0, 0.8, 0.8"), "whole output"),
    "linear scale 0.6 of 4": (_resize('mode="linear"', shape="1,1,2,4", scales="1.0, 1.0, 0.6, 0.6"), "whole output"),
    "opset 10": (_resize('mode="linear"', opset=10), "Resize-10"),
    "align_corners cubic scale 0.8 of 4": (
        _resize(
            'mode="cubic", coordinate_transformation_mode="align_corners"', shape="1,1,4,4", scales="1.0, 1.0, 0.8, 0.8"
        ),
        "whole output",
    ),
    "nearest tie 2 -> 7": (_resize('mode="nearest"', shape="1,1,2,2", sizes="1, 1, 7, 8"), "rounding boundary"),
    "nearest floor on a whole coordinate": (
        _resize(
            'mode="nearest", nearest_mode="floor", coordinate_transformation_mode="asymmetric"',
            shape="1,1,3,3",
            sizes="1, 1, 9, 9",
        ),
        "rounding boundary",
    ),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_refused_in_one_line_naming_the_node(case):
    model, needle = REFUSED[case]
    with pytest.raises(UserError) as err:
        TVMBackend().check_supported(model, load_target("cpu"))
    message = str(err.value)
    assert "\n" not in message and needle in message and "op Resize" in message and "'y'" in message


@pytest.mark.parametrize(
    "model",
    [
        _resize('mode="linear"'),
        _resize('mode="linear", coordinate_transformation_mode="align_corners"', scales="1.0, 1.0, 0.5, 0.5"),
        _resize('mode="nearest"', sizes="1, 2, 12, 24"),
        _resize('mode="nearest", coordinate_transformation_mode="asymmetric"', sizes="1, 2, 8, 16"),
        _resize('mode="cubic"', scales="1.0, 1.0, 0.5, 0.5"),
    ],
    ids=["linear x2", "align_corners /2", "nearest x3 (no tie)", "nearest x2 asymmetric", "cubic /2"],
)
def test_what_tvm_computes_like_onnx_is_accepted(model):
    """Accepted, and it really computes what ONNX Runtime computes."""
    import numpy as np
    import onnxruntime as ort
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    from deploycc.targets.tvm import cpu_schedules as cs

    TVMBackend().check_supported(model, load_target("cpu"))
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 8)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    target = tvm.target.Target({"kind": "llvm"})
    ex = tvm.compile(
        from_onnx(model, keep_params_in_input=False),
        target=target,
        relax_pipeline=cs.pipeline(target, cs.CPUFacts.of(target)),
    )
    got = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_cli_build_refuses_with_exit_2_and_one_line(tmp_path, capsys):
    path = tmp_path / "antialias.onnx"
    onnx.save(REFUSED["antialias"][0], path)
    assert run_cli(["build", str(path), "--target", "cpu", "-o", str(tmp_path / "out")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "antialias" in lines[0], lines
    assert not (tmp_path / "out").exists()
