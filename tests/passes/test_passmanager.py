"""The pass manager's invariants, its oracle and its trace; the ``passes`` and ``optimize`` commands."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from helpers import make_model, run_cli

from deploycc.passes import DeployPass, PassFailed, run_passes

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'
CHAIN = f"""{HEAD} g (float[1,4,8,8] x) => (float[1,4,8,8] y)
{{ a = Conv<pads=[1,1,1,1]>(x, w1)
   r = Relu(a)
   y = Conv(r, w2) }}"""
WEIGHTS = {"w1": (4, 4, 3, 3), "w2": (4, 4, 1, 1)}


def model():
    return make_model(CHAIN, WEIGHTS)


class Scale(DeployPass):
    """Deliberately wrong: scales the first conv's weight."""

    name = "scale"

    def call(self, m):
        conv = next(iter(m.graph))
        w = conv.inputs[1]
        new = ir.Value(
            name="w1.scaled",
            shape=w.shape,
            type=w.type,
            const_value=ir.tensor(w.const_value.numpy() * 1.01, name="w1.scaled"),
        )
        m.graph.register_initializer(new)
        conv.replace_input_with(1, new)
        m.graph.initializers.pop("w1")
        self.log.rewrite([conv.name], "scaled")
        return ir.passes.PassResult(m, modified=True)


class Lies(Scale):
    name = "lies"

    def call(self, m):
        super().call(m)
        return ir.passes.PassResult(m, modified=False)


class Dangling(DeployPass):
    name = "dangling"

    def call(self, m):
        m.graph.register_initializer(ir.Value(name="junk", const_value=ir.tensor(np.zeros(3, np.float32), name="junk")))
        return ir.passes.PassResult(m, modified=True)


class RenamesOutput(DeployPass):
    name = "renames"

    def call(self, m):
        m.graph.outputs[0].name = "z"
        return ir.passes.PassResult(m, modified=True)


class Breaks(DeployPass):
    name = "breaks"

    def call(self, m):
        m.graph.remove(next(iter(m.graph)), safe=False)  # leaves Relu reading a value nobody makes
        return ir.passes.PassResult(m, modified=True)


class FailsEnsures(DeployPass):
    name = "fails-ensures"

    def call(self, m):
        return ir.passes.PassResult(m, modified=False)

    def ensures(self, m):
        raise ir.passes.PostconditionError("promised something it did not do")


class SameAutoPad(DeployPass):
    """Makes a conv dilated with auto_pad SAME_UPPER, which ONNX Runtime refuses to run."""

    name = "same-auto-pad"

    def call(self, m):
        conv = next(iter(m.graph))
        conv.attributes.pop("pads")
        conv.attributes["auto_pad"] = ir.AttrString("auto_pad", "SAME_UPPER")
        conv.attributes["dilations"] = ir.AttrInt64s("dilations", [2, 2])
        return ir.passes.PassResult(m, modified=True)


def test_a_numerical_change_names_the_pass_the_node_and_the_figures():
    with pytest.raises(PassFailed) as err:
        run_passes(model(), [Scale()])
    msg = str(err.value)
    assert msg.startswith("pass scale changed the numerics of output 'y': max abs error")
    assert "first divergence at value 'r' (output of Relu 'Relu_1'), downstream of rewritten node(s) Conv_0" in msg


@pytest.mark.parametrize(
    "bad,expected",
    [
        (Lies, "reported modified=False but the graph changed"),
        (Dangling, "left initializer(s) without a use: ['junk']"),
        (RenamesOutput, "changed the graph's inputs or outputs"),
        (Breaks, "the ONNX checker rejects its output"),
        (FailsEnsures, "pass fails-ensures: postcondition failed: promised something"),
        (SameAutoPad, "pass same-auto-pad: onnxruntime cannot run its output"),
    ],
)
def test_invariant_violations_fail_with_the_pass_name(bad, expected):
    with pytest.raises(PassFailed) as err:
        run_passes(model(), [bad()])
    assert expected in str(err.value)


def test_failure_lists_the_passes_already_run():
    from deploycc.passes import FoldBatchNorm

    with pytest.raises(PassFailed, match=r"passes already run: fold-bn\)"):
        run_passes(model(), [FoldBatchNorm(), Scale()])


def test_trace_records_counts_rewrites_times_and_oracle():
    from deploycc.passes import FoldBatchNorm

    text = f"""{HEAD} g (float[1,4,8,8] x) => (float[1,4,8,8] y)
    {{ c = Conv<pads=[1,1,1,1]>(x, w1)
       y = BatchNormalization(c, s, b, m, v) }}"""
    m = make_model(text, {"w1": (4, 4, 3, 3), "s": (4,), "b": (4,), "m": (4,), "v": (4,)}, positive=("v",))
    _, [rec] = run_passes(m, [FoldBatchNorm()])
    d = rec.to_dict()
    assert (d["nodes_before"], d["nodes_after"]) == (2, 1) and d["ops_after"] == {"Conv": 1}
    assert d["rewrites"][0]["nodes"] == ["Conv_0", "BatchNormalization_1"] and d["seconds"]["pass"] >= 0
    assert d["oracle"].startswith("onnxruntime") and d["verification"][0]["ok"] and d["seconds"]["verify"] > 0


def test_passes_command_lists_each_pass_with_requires_and_ensures(capsys):
    assert run_cli(["passes", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["passes"]}
    assert set(rows) >= {"fold-bn", "rewrite-dilated", "fuse"}
    assert all(r["summary"] and r["ensures"] for r in rows.values())


ASPP_FILE = f"""{HEAD} g (float[1,8,32,64] x) => (float[1,8,32,64] y)
{{ a = Conv<pads=[18,18,18,18], dilations=[18,18], group=8>(x, w18)
   n = BatchNormalization(a, s, b, m, v)
   r = Relu(n)
   y = Conv(r, w1) }}"""
ASPP_WEIGHTS = {"w18": (8, 1, 3, 3), "w1": (8, 8, 1, 1), "s": (8,), "b": (8,), "m": (8,), "v": (8,)}


def test_optimize_writes_the_model_and_a_trace_and_states_dla_legality(tmp_path, capsys):
    from conftest import HERE

    src = tmp_path / "aspp.onnx"
    onnx.save(make_model(ASPP_FILE, ASPP_WEIGHTS, positive=("v",)), src)
    out, trace = tmp_path / "out" / "aspp.opt.onnx", tmp_path / "trace.json"
    code = run_cli(
        [
            "optimize",
            src,
            "-o",
            out,
            "--target",
            HERE / "xavier-dla-test.toml",
            "--passes",
            "fold-bn,rewrite-dilated,fuse",
            "--trace",
            trace,
        ]
    )
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert code == 0 and out.is_file() and "every dilated conv is legal for DLA" in printed
    data = json.loads(trace.read_text())
    assert [p["name"] for p in data["passes"]] == ["fold-bn", "rewrite-dilated", "fuse"]
    assert all({"nodes_before", "nodes_after", "rewrites", "seconds"} <= set(p) for p in data["passes"])
    assert data["passes"][1]["rewrites"][0]["method"] == "zero-insert"
    assert data["passes"][1]["rewrites"][0]["factor"] == [9, 9]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--passes", "fold-bn,nope"], "unknown pass 'nope'"),
        (["--pass-option", "fuse.alpha"], "expected KEY=VALUE"),
        (["--pass-option", "rewrite-dilated.method=fast"], "rewrite-dilated.method='fast': must be one of auto"),
    ],
)
def test_optimize_usage_errors_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    src = tmp_path / "m.onnx"
    onnx.save(make_model(ASPP_FILE, ASPP_WEIGHTS, positive=("v",)), src)
    out = tmp_path / "out.onnx"
    assert run_cli(["optimize", src, "-o", out, *args]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_unnamed_and_repeated_node_names_are_made_unique_before_the_passes():
    from deploycc.passes import FoldBatchNorm

    m = model()
    m.graph.node[0].name = m.graph.node[1].name = "dup"
    out, _ = run_passes(m, [FoldBatchNorm()])
    names = [n.name for n in out.graph.node]
    assert all(names) and len(set(names)) == 3


def test_a_pass_run_outside_the_manager_on_unnamed_nodes_fails_its_precondition():
    from deploycc.passes import FoldBatchNorm

    with pytest.raises(ir.passes.PreconditionError):
        FoldBatchNorm()(ir.serde.deserialize_model(model()))
