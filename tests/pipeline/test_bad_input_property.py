"""Property: whatever is wrong with the model file or the options, ``deploycc build`` exits 2 with
one line (or builds a verified artifact), never shows a traceback and never leaves anything at the
output path. The seed is printed (``DEPLOYCC_FUZZ_SEED`` replays it); the example count is small
and the model tiny so that it runs in the default suite; bench/fault_injection.py runs longer.
"""

from __future__ import annotations

import os
import random

import numpy as np
import onnx
from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model, run_cli
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from deploycc.pipeline.artifact import read_manifest

SEED = int(os.environ.get("DEPLOYCC_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
EXAMPLES = int(os.environ.get("DEPLOYCC_FUZZ_EXAMPLES") or 16)


def _valid() -> onnx.ModelProto:
    return make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",))


def _with_external(model: onnx.ModelProto, folder, offset, length) -> onnx.ModelProto:
    """Move the conv weight to ``w.bin`` and point it at (offset, length), which may be nonsense."""
    w = next(t for t in model.graph.initializer if t.name == "w")
    raw = onnx.numpy_helper.to_array(w).tobytes()
    (folder / "w.bin").write_bytes(raw)
    w.ClearField("float_data")
    w.ClearField("raw_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", offset), ("length", length)):
        if v is not None:
            w.external_data.add(key=k, value=str(v))
    return model


def corrupt(kind: str, data, folder) -> bytes:
    model = _valid()
    if kind == "truncate":
        raw = model.SerializeToString()
        return raw[: data.draw(st.integers(0, len(raw) - 1))]
    if kind == "bitflip":  # structure bytes: the graph's first bytes (names, node fields)
        raw = bytearray(model.SerializeToString())
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, min(len(raw), 400) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(raw)
    if kind == "dtype":
        model.graph.input[0].type.tensor_type.elem_type = data.draw(
            st.sampled_from([onnx.TensorProto.INT64, onnx.TensorProto.STRING, onnx.TensorProto.BOOL, 0, 999])
        )
    elif kind == "dims":
        dim = model.graph.input[0].type.tensor_type.shape.dim[data.draw(st.integers(0, 3))]
        dim.dim_value = data.draw(st.sampled_from([0, -1, 2**31, 2**40, 100000]))
    elif kind == "external":
        offset = data.draw(st.sampled_from([0, 1, -8, 10**9, "abc", None]))
        length = data.draw(st.sampled_from([None, 0, 8, 10**9, -1]))
        model = _with_external(model, folder, offset, length)
    elif kind == "nan":
        value = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        const = onnx.helper.make_node(
            "Constant", [], ["k"], value=onnx.numpy_helper.from_array(np.array([value], np.float32))
        )
        add = onnx.helper.make_node("Add", ["logits_r", "k"], ["logits"])
        model.graph.node[-1].output[0] = "logits_r"
        model.graph.node.extend([const, add])
    elif kind == "attribute":
        conv = model.graph.node[0]
        conv.attribute.append(onnx.helper.make_attribute("group", data.draw(st.sampled_from([0, -1, 2, 7]))))
    return model.SerializeToString()


BAD_OPTIONS = [
    [],
    ["--threads", "-4"],
    ["--calib-images", "0"],
    ["--max-miou-drop", "nan"],
    ["--tune-trials", "10"],
    ["--calib-data", "/nope"],
    ["--calib-method", "bogus"],
    ["--input-shape", "1x3x100000x100000"],
    ["--input-shape", "1x3xaxb"],
    ["--passes", "no-such-pass"],
    ["--tuning-db", "X"],
    ["--trials-per-task", "0"],
    ["-t", "cpu-int8", "--calib-images", "-5"],
    ["-t", "cpu-int8", "--max-miou-drop", "-1"],
    ["-t", "no-such-target"],
    ["--seed", "-1"],
]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["valid", "truncate", "bitflip", "dtype", "dims", "external", "nan", "attribute"]),
    options=st.sampled_from(BAD_OPTIONS),
)
def _property(tmp_path_factory, capsys, data, kind, options):
    capsys.readouterr()  # what an earlier example printed
    folder = tmp_path_factory.mktemp("fuzz")
    model = folder / "m.onnx"
    model.write_bytes(corrupt(kind, data, folder) if kind != "valid" else _valid().SerializeToString())
    out = folder / "out"
    args = ["build", model, "-t", "cpu-ort", "-o", out, *options]
    try:
        code = run_cli(args)
    except BaseException as exc:
        raise AssertionError(f"seed {SEED}: {kind} {options}: {type(exc).__name__}: {exc}") from exc
    err = capsys.readouterr().err
    assert code in (0, 2), f"seed {SEED}: {kind} {options}: exit {code}: {err}"
    assert "Traceback" not in err
    if code == 2:  # the stage progress lines before it, then the one error line
        last = err.strip().splitlines()[-1]
        assert last.startswith("error:") and not out.exists(), f"seed {SEED}: {kind} {options}: {err}"
    else:
        assert read_manifest(out)["verification"]["ok"]
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


def test_bad_models_and_options_exit_2_never_a_traceback(tmp_path_factory, capsys):
    with capsys.disabled():  # on the terminal in every run, not only in a failure's report
        print(f"\nbuild property test: seed {SEED}, {EXAMPLES} examples (replay: DEPLOYCC_FUZZ_SEED={SEED})")
    seed(SEED)(_property)(tmp_path_factory, capsys)
