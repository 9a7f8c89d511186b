"""The example project file ``deploycc.toml`` runs as written, and says what gates where.

``deploycc ci deploycc.toml`` must end in exit 3 on this machine: cpu and cpu-ort pass every gate,
xavier-int8's build and numerics (its Q/DQ proxy and TensorRT's offline checks, which gate) pass
here, and exactly the gates the file names as Jetson-only do not run. The file's comment, the
README and this run are kept in step by these tests. (Run on a copy whose output and cache are in
a temporary folder, so the checkout is not written to; the model path is the repository's.)
"""

from __future__ import annotations

import json
import re

from helpers import REPO, run_cli

EXAMPLE = REPO / "deploycc.toml"


def jetson_only_gates() -> list[str]:
    """The gates the example file declares as run on the Jetson only (its comment line)."""
    match = re.search(r"jetson-only gates = ([a-z, -]+) run on the Jetson", EXAMPLE.read_text())
    assert match, "deploycc.toml no longer declares its jetson-only gates"
    return [g.strip() for g in match.group(1).split(",")]


def test_readme_says_what_gates_and_what_runs_on_the_jetson():
    readme = (REPO / "README.md").read_text()
    assert "not yet gating" not in readme
    gates = ", ".join(f"`{g}`" for g in jetson_only_gates())
    assert f"| {gates} of `deploycc ci` | Jetson | not run (exit 3) |" in readme
    source = (REPO / "targets" / "tensorrt" / "offline_checks.py").read_text()
    for name in ("model_onnx", "calib_cache_ranges", "calib_cache_simulation"):  # the checks' keys
        assert name in source and f"`{name}`" in readme, name


def test_example_project_ends_in_exit_3_naming_the_jetson_only_gates(tmp_path, capsys):
    text = EXAMPLE.read_text()
    replaced = text.replace('source = "models/', f'source = "{REPO}/models/')
    replaced = replaced.replace('output = "build/ci"', f'output = "{tmp_path}/out"')
    replaced = replaced.replace('cache = ".deploycc-cache/ci"', f'cache = "{tmp_path}/cache"')
    assert replaced.count(str(tmp_path)) == 2 and str(REPO) in replaced, "the example's paths changed"
    project = tmp_path / "deploycc.toml"
    project.write_text(replaced)

    code = run_cli(["ci", project])
    err = capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    open_gates = [
        (p["pair"], g["gate"], g["status"]) for p in report["pairs"] for g in p["gates"] if g["status"] != "passed"
    ]
    assert open_gates == [("street_ref@xavier-int8", g, "not_run") for g in jetson_only_gates()], err
    assert code == 3
    assert "street_ref@xavier-int8 gate min-miou" in " ".join(err.split())
