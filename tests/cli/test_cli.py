"""Usage mistakes on the command line: one `error:` line, exit 2, no traceback."""

from __future__ import annotations

import pytest

from helpers import run_cli


@pytest.mark.parametrize("args, needle", [
    (["build", "x.onnx", "--bogus"], "--bogus"),
    (["nosuch"], "nosuch"),
    (["build", "x.onnx", "--threads", "abc"], "--threads"),
    (["run", "art"], "--input"),
])
def test_usage_errors_are_one_line(capsys, args, needle):
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
