"""Every report kind, written once per session by the real commands on small nets.

* build: a dilated-conv net with BatchNorm for a DLA-like test target (``[legality]`` with an
  accelerator that has no Softmax layer and no dilated convs), so the report has rewrites, a
  refusal-free fold, fallbacks before the passes and fewer after;
* verify: the golden segmentation model on labelled data, with the copy that never predicts
  class 5 as reference (so the disagreement panel has red pixels), two gates that pass and the
  numerics gate that fails (the reference is another model);
* bench: the golden artifact, a few runs, with its per-layer profile; inspect: the dilated net with the test
  target; ci: the golden model for cpu-ort, whose report links the pair's build and verify reports.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from helpers import make_model, run_cli
from report_nets import DILATED, DILATED_WEIGHTS, target_file
from seg_golden import seg_model, write_cityscapes


@pytest.fixture(scope="session")
def report_inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("report-inputs")
    onnx.save(make_model(DILATED, DILATED_WEIGHTS, positive=("v",)), root / "dilated.onnx")
    onnx.save(seg_model(), root / "golden.onnx")
    onnx.save(seg_model(drop_class=5), root / "no5.onnx")
    write_cityscapes(root / "data", n=4, seed=3)
    return {
        "root": root,
        "dilated": root / "dilated.onnx",
        "golden": root / "golden.onnx",
        "no5": root / "no5.onnx",
        "data": root / "data",
        "target": target_file(root),
    }


@pytest.fixture(scope="session")
def reports(report_inputs, tmp_path_factory) -> dict:
    """{kind: report path} for build, verify, bench, inspect, written through the command line."""
    i, out = report_inputs, tmp_path_factory.mktemp("reports")
    golden = out / "golden.cpu-ort"
    assert run_cli(["build", i["golden"], "--target", "cpu-ort", "-o", golden]) == 0
    paths = {k: out / f"{k}.html" for k in ("build", "verify", "bench", "inspect")}
    assert (
        run_cli(
            [
                "build",
                i["dilated"],
                "--target",
                i["target"],
                "-o",
                out / "dilated.art",
                "--report",
                paths["build"],
                "--json",
            ]
        )
        == 0
    )
    # exit 1: the numerics gate fails against a reference that is another model; the report is still written
    assert (
        run_cli(
            [
                "verify",
                golden,
                "--data",
                i["data"],
                "--reference",
                i["no5"],
                "--min-miou",
                "50",
                "--max-miou-drop",
                "100",
                "--report",
                paths["verify"],
                "--json",
            ]
        )
        == 1
    )
    assert (
        run_cli(
            [
                "bench",
                golden,
                "--max-repeats",
                "8",
                "--profile",
                "--profile-runs",
                "3",
                "--report",
                paths["bench"],
                "--json",
            ]
        )
        == 0
    )
    assert run_cli(["inspect", i["dilated"], "--target", i["target"], "--report", paths["inspect"], "--json"]) == 0
    assert run_cli(["ci", ci_project(i["root"], out / "ci-cache"), "-o", out / "ci", "--json"]) == 0
    return {**paths, "ci": out / "ci" / "report.html", "folder": out}


def ci_project(root: Path, cache: Path) -> Path:
    """The golden model for cpu-ort on the labelled data, gated on mIoU and its drop."""
    path = root / "deploycc.toml"
    path.write_text(f"""targets = ["cpu-ort"]
[project]
name = "report-test"
output = "ci"
cache = "{cache}"
threads = 1
[[models]]
name = "golden"
source = "golden.onnx"
[data]
validation = "data"
[gates]
min_miou = 0.9
max_miou_drop = 0.001
[timing]
warmup = 1
min_repeats = 3
max_repeats = 4
max_seconds = 5
""")
    return path
