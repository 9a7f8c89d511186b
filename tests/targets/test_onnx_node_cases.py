"""ONNX's own backend node test cases, through every host backend: a second opinion on numerics.

An artifact is verified against ONNX Runtime, so a bug ONNX Runtime shares with a backend passes
unseen. ONNX's backend test cases carry outputs computed by its reference implementation: each
case for an operator the zoo uses (``make onnx-node-data`` fetches them from the onnx 1.19.1
wheel into build/onnx-node-tests; recent wheels dropped them) is compiled by the backend adapter
of ``cpu-ort`` (ONNX Runtime) and ``cpu`` (TVM), run on the case's inputs, and compared with the
case's expected outputs. Inputs after the first become constants of the graph (scales, sizes,
bounds, the second operand: what they are in deploycc's graphs), so each case is one static
graph with one input. ``cpu-int8`` is left out: it quantizes, and the cases' exact outputs do not
apply to an INT8 kernel.

A backend may refuse a case cleanly (``check_supported``: one line naming the node): that is a
pass. A case whose result differs from ONNX's is a failure, unless it is listed in ``KNOWN_WRONG``
with what was measured; such entries are strict xfails, so a fix upstream turns them into
failures here until the list is updated. The TVM sweep over every case is ``slow``; a default run
compiles one case of each of ``DEFAULT_TVM_OPS`` with TVM. (The harness is shared: ``run_case``.)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import REPO
from onnx import numpy_helper

from deploycc.core.errors import UserError
from deploycc.core.loader import graph_inputs
from deploycc.core.numerics import value_specs
from deploycc.targets import load_target
from deploycc.targets.backend import get_backend

DATA = REPO / "build" / "onnx-node-tests" / "node"
OPS = (
    "conv",
    "batchnorm",
    "relu",
    "add",
    "concat",
    "maxpool",
    "averagepool",
    "globalaveragepool",
    "resize",
    "sigmoid",
    "mul",
    "clip",
    "hardsigmoid",
    "hardswish",
)
RTOL, ATOL = 1e-3, 1e-5  # ONNX's backend test runner uses rtol 1e-3 (atol 1e-7; ours covers float32 sums)

# (target, case) -> what was measured; a strict xfail.
KNOWN_WRONG = {
    (
        "cpu-ort",
        "test_resize_downsample_scales_cubic_align_corners",
    ): "ONNX Runtime 1.32 downsamples with align_corners unlike ONNX's reference (cubic)",
    (
        "cpu-ort",
        "test_resize_downsample_scales_linear_align_corners",
    ): "ONNX Runtime 1.32 downsamples with align_corners unlike ONNX's reference (linear)",
}


def _cases() -> list[str]:
    if not DATA.is_dir():
        return []
    out = []
    for case in sorted(DATA.iterdir()):
        op = case.name.removeprefix("test_")
        if not any(op == o or op.startswith(o + "_") for o in OPS) or "expanded" in op or "training" in op:
            continue
        if op.startswith(("conv_transpose", "convinteger", "maxpool_with_argmax")):
            continue
        out.append(case.name)
    return out


CASES = _cases()
pytestmark = pytest.mark.skipif(not CASES, reason=f"no ONNX node test data in {DATA} (run `make onnx-node-data`)")


def load_case(name: str) -> tuple[onnx.ModelProto, dict, list[np.ndarray]] | str:
    """(graph with one input, feeds, expected outputs), or why the case does not apply."""
    folder = DATA / name
    model = onnx.load(str(folder / "model.onnx"))
    data = folder / "test_data_set_0"
    inputs = [numpy_helper.to_array(_tensor(p)) for p in sorted(data.glob("input_*.pb"))]
    expected = [numpy_helper.to_array(_tensor(p)) for p in sorted(data.glob("output_*.pb"))]
    real = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if not inputs or inputs[0].dtype != np.float32 or any(e.dtype != np.float32 for e in expected):
        return "not a float32 case (deploycc's targets take float32 images)"
    if len(model.graph.output) != len(expected):
        return "an output without expected data"
    for value, arr in list(zip(real, inputs))[1:]:
        model.graph.initializer.append(numpy_helper.from_array(arr, value.name))
        model.graph.input.remove(value)
    return model, {real[0].name: inputs[0]}, expected


def _tensor(path: Path) -> onnx.TensorProto:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return t


def run_case(target_name: str, model: onnx.ModelProto, feeds: dict) -> list[np.ndarray] | str:
    """The case compiled by the target's backend adapter and run; a clean refusal is returned."""
    target = load_target(target_name)
    backend = get_backend(target.backend)
    try:
        backend.check_supported(model, target)
    except UserError as exc:
        return f"refused: {exc}"
    specs = value_specs(graph_inputs(model))
    manifest = {
        "inputs": [s.to_dict() for s in specs],
        "outputs": [s.to_dict() for s in value_specs(model.graph.output)],
        "runtime": {"threads": 1},
        "target": target.to_dict(),
    }
    with tempfile.TemporaryDirectory(prefix="deploycc-node-") as scratch:
        result = backend.compile(model, target, Path(scratch), {"artifact_path": scratch})
        session = backend.load(Path(scratch), {**manifest, "backend_info": result.info})
        return session.run(feeds)


def _check(target_name: str, name: str, request) -> None:
    case = load_case(name)
    if isinstance(case, str):
        pytest.skip(case)
    model, feeds, expected = case
    if (target_name, name) in KNOWN_WRONG:
        request.node.add_marker(pytest.mark.xfail(reason=KNOWN_WRONG[(target_name, name)], strict=True))
    got = run_case(target_name, model, feeds)
    if isinstance(got, str):
        assert got.startswith("refused: ") and "\n" not in got
        return
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=f"{target_name} {name}")


@pytest.mark.parametrize("name", CASES)
def test_onnx_runtime_backend(name, request):
    _check("cpu-ort", name, request)


DEFAULT_TVM_OPS = ("conv", "batchnorm", "maxpool", "averagepool", "globalaveragepool", "resize", "concat")


def _first_per_op(cases: list[str]) -> list[str]:
    """One applicable case per operator of ``DEFAULT_TVM_OPS`` (a TVM compile takes seconds)."""
    seen, out = set(), []
    for name in cases:
        op = next(o for o in sorted(OPS, key=len, reverse=True) if name.removeprefix("test_").startswith(o))
        if op in DEFAULT_TVM_OPS and op not in seen and not isinstance(load_case(name), str):
            seen.add(op)
            out.append(name)
    return out


DEFAULT_TVM = _first_per_op(CASES) if CASES else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in DEFAULT_TVM else pytest.mark.slow) for n in CASES])
def test_tvm_backend(name, request):
    _check("cpu", name, request)
