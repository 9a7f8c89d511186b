"""Lint, format and types: ruff (pyproject ``[tool.ruff]``) and mypy (``[tool.mypy]``) find nothing.

Each tool runs from the repository root in a subprocess of this interpreter (the pinned versions of
requirements.txt); a finding fails the test with the tool's own report. mypy checks ``deploycc``
(passes, targets and models through its links) and keeps its cache in .mypy_cache: a cold run takes
tens of seconds, a warm one a few.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from helpers import REPO

CHECKS = {
    "ruff check": ("ruff", "check", "--no-cache", "."),
    "ruff format": ("ruff", "format", "--check", "--no-cache", "."),
    "mypy": ("mypy",),
}


def _run(*args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(args[0]) is None:
        pytest.skip(f"{args[0]} is not installed (pip install -r requirements.txt)")
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("check", list(CHECKS))
def test_tool_finds_nothing(check):
    proc = _run(*CHECKS[check])
    assert proc.returncode == 0, f"{check}:\n{proc.stdout}{proc.stderr}"


def test_mypy_catches_a_wrong_argument_type_between_districts(tmp_path):
    """The type check is live and strict enough: an int where a build output path is expected, in
    a function without annotations (check_untyped_defs), is an arg-type error."""
    caller = tmp_path / "wrong_call.py"
    caller.write_text(
        "from deploycc.pipeline.artifact import check_output\n\n\ndef stage():\n    return check_output(3, [])\n"
    )
    proc = _run("mypy", "--config-file", str(REPO / "pyproject.toml"), str(caller))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'Argument 1 to "check_output" has incompatible type "int"' in proc.stdout, proc.stdout
