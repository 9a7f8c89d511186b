"""One vocabulary: ``--version``, and the same flag names for the same things across commands."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest
from helpers import REPO, run_cli


def test_version_names_deploycc_and_each_toolchain(capsys):
    assert run_cli(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"deploycc {version('deploycc')}"
    found = dict(line.split(maxsplit=1) for line in lines[1:])
    assert found["onnxruntime"] == version("onnxruntime") and found["onnx"] == version("onnx")
    assert {"apache-tvm", "tensorrt", "torch"} <= set(found)


def test_version_imports_no_toolchain():
    # --version reads installed metadata: no heavy library needs to load to say what is installed
    code = (
        "import sys; from deploycc.cli.main import _print_version\n"
        "before = set(sys.modules)\n"
        "try: _print_version(True)\n"
        "except BaseException: pass\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "('torch', 'tvm', 'onnxruntime', 'onnxsim', 'tensorrt')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_data_synth_takes_output_like_every_command(tmp_path, capsys):
    assert run_cli(["data", "synth", "--output", tmp_path / "d", "--n", "1", "--size", "32x64"]) == 0
    assert (tmp_path / "d").is_dir()


@pytest.mark.parametrize(
    "command, flag",
    [
        (["build"], "--target"),
        (["build"], "--output"),
        (["verify"], "--data"),
        (["verify"], "--lut"),
        (["verify"], "--report"),
        (["lut", "friendliness"], "--lut"),
        (["lut", "friendliness"], "--report"),
        (["lut", "predict"], "--lut"),
        (["lut", "check"], "--lut"),
        (["lut", "validate"], "--lut"),
        (["data", "synth"], "--output"),
        (["train"], "--data"),
        (["optimize"], "--target"),
        (["inspect"], "--target"),
    ],
)
def test_the_same_thing_has_the_same_flag(command, flag):
    from typer.main import get_command

    from deploycc.cli.main import app

    cmd = get_command(app)
    for name in command:
        cmd = cmd.commands[name]
    assert flag in {o for p in cmd.params for o in getattr(p, "opts", [])}
