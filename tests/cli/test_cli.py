"""Usage mistakes on the command line: one `error:` line, exit 2, no traceback."""

from __future__ import annotations

import pytest
from helpers import run_cli


@pytest.mark.parametrize(
    "args, needle",
    [
        (["build", "x.onnx", "--bogus"], "--bogus"),
        (["nosuch"], "nosuch"),
        (["build", "x.onnx", "--threads", "abc"], "--threads"),
        (["run", "art"], "--input"),
    ],
)
def test_usage_errors_are_one_line(capsys, args, needle):
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err


def test_an_internal_error_exits_4_with_one_line_and_the_traceback_file(tmp_path, capsys, monkeypatch):
    import re

    import onnx
    from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model

    from deploycc.pipeline import pipeline

    def broken(model, source):
        raise ZeroDivisionError("a bug in a pass")

    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pipeline, "simplify", broken)
    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS), tmp_path / "m.onnx")
    assert run_cli(["build", tmp_path / "m.onnx", "-o", tmp_path / "out"]) == 4
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "done in" not in line]
    assert len(lines) == 1 and lines[0].startswith("internal error: ZeroDivisionError: a bug in a pass"), lines
    path = re.search(r"traceback written to (\S+?);", lines[0]).group(1)
    assert "Traceback" in open(path).read() and "broken" in open(path).read()
    assert not (tmp_path / "out").exists()
