"""What each report says (read from its HTML, no browser needed), and the --report option's rules."""

from __future__ import annotations

import json
import re

import onnx
import pytest
from helpers import make_model, run_cli
from report_nets import DILATED, DILATED_WEIGHTS, sample_profile, target_file

from deploycc.report import bench, verify, write_report


def text_of(path) -> str:
    return path.read_text(encoding="utf-8")


def images(page: str) -> list[str]:
    return re.findall(r"<img [^>]*src='([^']{0,40})", page)


def test_build_report_shows_rewrites_refusals_and_the_legality_map(reports):
    page = text_of(reports["build"])
    assert "Conv+BatchNormalization -&gt; Conv" in page  # fold-bn's rewrite
    assert "dilated Conv -&gt; zero-insert" in page  # rewrite-dilated's rewrite
    assert "no exact rewrite makes it legal" in page  # its refusal, with the reason
    assert "3 node(s) falling back to GPU before the passes" in page
    assert "2 node(s) falling back to GPU after the passes" in page
    assert "DLA has no Softmax layer" in page and "dilation [4, 4] outside [1, 1]" in page
    assert len(images(page)) == 4 and all(src.startswith("data:image/png;base64,") for src in images(page))
    assert "http://" not in page and "https://" not in page


def test_failed_numerics_still_write_the_build_report_and_no_artifact(tmp_path, capsys):
    onnx.save(make_model(DILATED, DILATED_WEIGHTS, positive=("v",)), tmp_path / "m.onnx")
    target = target_file(tmp_path, verify="[verify]\nmin_cosine = 1.5\n")  # no output can reach it
    code = run_cli(
        ["build", tmp_path / "m.onnx", "--target", target, "-o", tmp_path / "art", "--report", tmp_path / "r.html"]
    )
    assert code == 1
    assert not (tmp_path / "art").exists()
    page = text_of(tmp_path / "r.html")
    assert "data-verdict='failed'" in page and "none written: the check numerics failed" in page
    assert "data-section='Failed check'" in page and "numerical verification failed" in page


@pytest.mark.parametrize(
    "command", [["build", "M", "--target", "cpu"], ["verify", "A", "--data", "D"], ["bench", "A"], ["inspect", "M"]]
)
def test_report_must_be_an_html_file(tmp_path, capsys, command):
    args = [tmp_path / c if c in ("M", "A", "D") else c for c in command]
    assert run_cli([*args, "--report", tmp_path / "r.txt"]) == 2
    assert "give a name ending in .html" in capsys.readouterr().err
    (tmp_path / "d.html").mkdir()
    assert run_cli([*args, "--report", tmp_path / "d.html"]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and len(err.strip().splitlines()) == 1


def test_verify_report_scores_and_samples(reports):
    page = text_of(reports["verify"])
    for figure in ("iou", "confusion", "samples"):
        assert f"data-figure='{figure}'" in page
    assert "agreement with the reference: pixels" in page and "numerics vs reference" in page


def test_verify_report_without_data_says_what_did_not_run(tmp_path):
    d = {
        "artifact": "a",
        "target": "cpu",
        "backend": "tvm",
        "reference": None,
        "gates": [
            {
                "gate": "max-latency-error",
                "value": None,
                "limit": 10,
                "unit": "%",
                "status": "not run",
                "reason": "no LUT entry for this target",
            }
        ],
    }
    page = write_report(verify.page(d), tmp_path / "v.html").read_text()
    assert "no labelled data given (--data DIR)" in page and "no reference given (--reference MODEL)" in page
    assert page.count("data-verdict='not run'") == 4  # header, accuracy, numerics, the gate
    assert "no LUT entry for this target" in page


def test_bench_report_draws_the_profile_or_says_why_not(tmp_path, reports, capsys):
    page = text_of(reports["bench"])  # bench --profile
    assert "data-figure='profile-layers'" in page and "data-figure='profile-nodes'" in page
    assert "not run" not in page and "on ort (sum of its nodes)" in page
    assert (
        run_cli(
            [
                "bench",
                reports["folder"] / "golden.cpu-ort",
                "--max-repeats",
                "6",
                "--json",
                "--report",
                tmp_path / "b.html",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert len(data["samples_ms"]) == data["latency"]["runs"] and "samples_ms" not in data["latency"]
    without = text_of(tmp_path / "b.html")
    assert "data-verdict='not run'" in without and "per-layer profile: bench ran without --profile" in without


def test_profile_bars_group_nodes_by_layer_and_unit(tmp_path):
    data = {
        "artifact": "a",
        "target": "cpu",
        "latency": {
            "median_ms": 1.0,
            "p90_ms": 1.2,
            "p99_ms": 1.3,
            "min_ms": 0.9,
            "mean_ms": 1.05,
            "runs": 3,
            "stable": True,
            "threads": 1,
        },
        "samples_ms": [0.9, 1.0, 1.3],
        "profile": sample_profile(),
    }
    page = write_report(bench.page(data), tmp_path / "b.html").read_text()
    assert "layer 0 (k3e1)" in page and "not traced to a layer" in page
