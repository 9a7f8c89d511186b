"""``deploycc ci`` end to end on real builds: gates, exit codes, reports, the build cache."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from helpers import run_cli

from deploycc.ci import load_config, run_ci

EXPECTED_MIOU = (0.75 + 1.0 + 0.0) / 3  # see conftest.py
GATES = """
[gates]
min_miou_pct = 50
max_miou_drop_points = 0.1
max_latency_ms = 10000
"""


def _report(project) -> dict:
    return json.loads((project / "reports" / "report.json").read_text())


def test_pairs_pass_gates_and_write_every_report(project, ci_cache, write_config, capsys):
    path = write_config(project, ci_cache, GATES, targets='"cpu", "cpu-ort"')
    assert run_cli(["ci", path]) == 0
    report = _report(project)
    assert report["outcome"] == "passed" and report["ok"]
    by_pair = {p["pair"]: p for p in report["pairs"]}
    for pair in ("color@cpu", "color@cpu-ort"):
        p = by_pair[pair]
        assert p["status"] == "passed"
        assert p["accuracy"]["miou"] == pytest.approx(EXPECTED_MIOU, abs=1e-12)
        assert p["accuracy"]["miou_drop"] == pytest.approx(0.0, abs=1e-12)
        assert [g["gate"] for g in p["gates"]] == ["build", "numerics", "min-miou", "max-miou-drop", "max-latency"]
        assert all(g["status"] == "passed" for g in p["gates"])
        assert p["latency"]["runs"] >= 3
    root = ET.parse(project / "reports" / "junit.xml").getroot()
    assert root.get("failures") == "0" and root.get("skipped") == "0"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"color@cpu", "color@cpu-ort"}
    assert len(suites["color@cpu"].findall("testcase")) == 5
    html = (project / "reports" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "color@cpu-ort" in html
    assert (project / "reports" / "miou.png").stat().st_size > 1000
    for pair in ("color@cpu", "color@cpu-ort"):  # each pair's build and verify reports, linked
        assert by_pair[pair]["reports"] == {"build": f"pairs/{pair}/build.html", "verify": f"pairs/{pair}/verify.html"}
        assert (project / "reports" / "pairs" / pair / "verify.html").stat().st_size > 10_000
        assert f"href='pairs/{pair}/build.html'" in html


XAVIER_WAIVERS = """
[[waivers]]
pair = "color@xavier-int8"
gate = "{gate}"
reason = "checked on the Jetson runner"
"""


def test_a_device_only_pair_is_unverified_until_its_gates_are_waived(project, ci_cache, write_config, capsys):
    # The INT8 bundle for the Jetson is built and its Q/DQ numerics checked here; mIoU and latency
    # need the device: not run, never "passed", and ci exits 3 (unverified) naming the gate.
    path = write_config(project, ci_cache, GATES, "device.toml", targets='"cpu-ort", "xavier-int8"')
    capsys.readouterr()
    assert run_cli(["ci", path]) == 3
    err = capsys.readouterr().err
    assert "unverified: ci: 3 gate(s) did not run" in err and "color@xavier-int8 gate min-miou not run" in err
    report = _report(project)
    assert report["outcome"] == "unverified" and not report["ok"]
    bundle = {p["pair"]: p for p in report["pairs"]}["color@xavier-int8"]
    assert bundle["status"] == "unverified" and bundle["remaining"]
    assert bundle["reports"] == {"build": "pairs/color@xavier-int8/build.html"}
    assert bundle["gates"][1]["gate"] == "numerics" and bundle["gates"][1]["status"] == "passed"
    not_run = [g for g in bundle["gates"] if g["status"] == "not_run"]
    assert {g["gate"] for g in not_run} == {"min-miou", "max-miou-drop", "max-latency"}
    assert all("--resume" in g["needs"] and g["reason"] and not g["ok"] for g in not_run)
    root = ET.parse(project / "reports" / "junit.xml").getroot()
    assert root.get("failures") == "0" and root.get("skipped") == "3"
    skipped = root.findall("testsuite/testcase/skipped")
    assert len(skipped) == 3 and all("not run" in s.get("message") and "needs" in s.get("message") for s in skipped)
    # Waiving two of the three still leaves the pair unverified; waiving all three passes, and
    # every report names the waivers.
    two = GATES + "".join(XAVIER_WAIVERS.format(gate=g) for g in ("min-miou", "max-miou-drop"))
    assert (
        run_cli(["ci", write_config(project, ci_cache, two, "waived2.toml", targets='"cpu-ort", "xavier-int8"')]) == 3
    )
    three = two + XAVIER_WAIVERS.format(gate="max-latency")
    capsys.readouterr()
    assert (
        run_cli(["ci", write_config(project, ci_cache, three, "waived3.toml", targets='"cpu-ort", "xavier-int8"')]) == 0
    )
    out = capsys.readouterr().out
    assert out.count("waived in the project file: color@xavier-int8") == 3 and "checked on the Jetson runner" in out
    report = _report(project)
    assert report["outcome"] == "passed" and report["summary"]["waived"] == 3
    assert [w["covers"] for w in report["waivers"]] == ["not_run"] * 3
    root = ET.parse(project / "reports" / "junit.xml").getroot()
    assert all(
        s.get("message").startswith("waived in the project file") for s in root.findall("testsuite/testcase/skipped")
    )
    assert "waived: color@xavier-int8 gate max-latency" in (project / "reports" / "report.html").read_text()


def test_a_target_whose_compiler_is_missing_is_unverified_not_passed(
    project, ci_cache, write_config, capsys, monkeypatch
):
    from deploycc.targets.onnxruntime.backend import ORTBackend

    monkeypatch.setattr(ORTBackend, "available", lambda self: "onnxruntime is not installed")
    path = write_config(project, ci_cache, GATES, "missing.toml", targets='"cpu-ort"')
    assert run_cli(["ci", path]) == 3
    gates = _report(project)["pairs"][0]["gates"]
    assert [(g["gate"], g["status"]) for g in gates] == [
        ("build", "not_run"),
        ("numerics", "not_run"),
        ("min-miou", "not_run"),
        ("max-miou-drop", "not_run"),
        ("max-latency", "not_run"),
    ]
    assert "onnxruntime is not installed" in gates[0]["reason"]


def test_a_waiver_must_name_a_pair_a_gate_and_a_reason(project, ci_cache, write_config, capsys):
    for body, message in (
        ('[[waivers]]\npair = "color@h100"\ngate = "max-latency"\nreason = "x"\n', "'color@h100' is not a pair"),
        ('[[waivers]]\npair = "color@cpu"\ngate = "speed"\nreason = "x"\n', "'speed' is not a gate"),
        ('[[waivers]]\npair = "color@cpu"\ngate = "max-latency"\n', "missing key(s) ['reason']"),
        ('[[waivers]]\npair = "color@cpu"\ngate = "max-latency"\nreason = " "\n', "say why"),
    ):
        capsys.readouterr()
        assert run_cli(["ci", write_config(project, ci_cache, GATES + body, "bad-waiver.toml")]) == 2
        assert message in capsys.readouterr().err


def test_tightened_gate_fails_naming_pair_gate_and_figure(project, ci_cache, write_config, capsys):
    path = write_config(project, ci_cache, GATES.replace("min_miou_pct = 50", "min_miou_pct = 60"), "tight.toml")
    capsys.readouterr()
    assert run_cli(["ci", path]) == 1
    err = capsys.readouterr().err
    assert "color@cpu gate min-miou failed: 58.33 % (limit 60.00 %)" in err
    assert "color@cpu-ort gate min-miou failed" in err
    root = ET.parse(project / "reports" / "junit.xml").getroot()
    failures = root.findall("testsuite/testcase/failure")
    assert root.get("failures") == "2" and len(failures) == 2
    assert all("min-miou failed value=0.583333" in f.get("message") for f in failures)
    path = write_config(
        project, ci_cache, GATES.replace("max_latency_ms = 10000", "max_latency_ms = 0.0001"), "fast.toml"
    )
    assert run_cli(["ci", path, "--only", "color@cpu-ort"]) == 1
    assert "color@cpu-ort gate max-latency failed" in capsys.readouterr().err
    assert run_cli(["ci", path, "--only", "color@h100"]) == 2
    assert "--only color@h100: no such pair" in capsys.readouterr().err


def test_unchanged_pairs_come_from_the_cache_and_corruption_is_rebuilt(project, ci_cache, write_config):
    cfg = load_config(write_config(project, ci_cache, GATES, "cache.toml"))
    first = {p["pair"]: p for p in run_ci(cfg)["pairs"]}
    assert all(p["cache"] in ("hit", "miss") for p in first.values())
    again = {p["pair"]: p for p in run_ci(cfg)["pairs"]}
    assert {p["cache"] for p in again.values()} == {"hit"}
    # flip a byte of the compiled library: detected by its sha256 in the manifest, rebuilt
    artifact = cfg.cache / "builds"
    lib = next(p for p in artifact.rglob("model.so") if again["color@cpu"]["cache_key"] in str(p))
    data = bytearray(lib.read_bytes())
    data[len(data) // 2] ^= 0xFF
    # a new file in its place: this test process still has the old library mapped from earlier runs
    tmp = lib.with_name("model.so.flipped")
    tmp.write_bytes(bytes(data))
    tmp.replace(lib)
    # and tear the seal of the other entry
    other = ci_cache / "builds" / again["color@cpu-ort"]["cache_key"][:2] / again["color@cpu-ort"]["cache_key"]
    (other / "entry.json").write_text("{")
    third = {p["pair"]: p for p in run_ci(cfg)["pairs"]}
    assert third["color@cpu"]["cache"].startswith("corrupt (file model.so does not match its sha256")
    assert third["color@cpu-ort"]["cache"].startswith("corrupt (entry.json: not JSON")
    assert all(p["status"] == "passed" for p in third.values())
    assert {p["cache"] for p in run_ci(cfg)["pairs"]} == {"hit"}


def test_a_changed_model_is_rebuilt(project, ci_cache, write_config, tmp_path):
    import shutil

    import numpy as np
    import onnx

    cfg = load_config(write_config(project, ci_cache, GATES, "changed.toml"))
    before = run_ci(cfg, only=["color@cpu-ort"])["pairs"][0]
    model = onnx.load(project / "color.onnx")
    w = onnx.numpy_helper.to_array(model.graph.initializer[0]) * 2.0  # same argmax, other bytes
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(w.astype(np.float32), "w"))
    copy = tmp_path / "p"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("reports"))
    onnx.save(model, copy / "color.onnx")
    after = run_ci(load_config(copy / "changed.toml"), only=["color@cpu-ort"])["pairs"][0]
    assert after["cache"] == "miss" and after["cache_key"] != before["cache_key"]
    assert after["accuracy"]["miou"] == pytest.approx(EXPECTED_MIOU)
