"""`deploycc lut build|predict|validate|check`: outputs, reports and exit codes."""

from __future__ import annotations

import json

import pytest

from deploycc.cli.main import main
from deploycc.lut import load_lut, save_lut
from deploycc.lut.measure_arch import sample_genotypes
from deploycc.models import parse_arch, save_arch


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_build_command_writes_a_lut(tmp_path, capsys, lut_cache):
    out = tmp_path / "skip.lut.json"
    code, stdout, stderr = _run(
        [
            "lut",
            "build",
            "--space",
            "fbnet",
            "--target",
            "cpu-ort",
            "--input-shape",
            "1x3x32x32",
            "--units",
            "skip",
            "--max-repeats",
            "5",
            "--cache",
            str(tmp_path / "c"),
            "-o",
            str(out),
            "--json",
        ],
        capsys,
    )
    data = json.loads(stdout)
    assert code == 0 and data["lut"] == str(out) and data["measured_entries"] >= 3
    loaded = [e for e in load_lut(out).entries.values() if e.get("load", {}).get("loaded")]
    assert bool(data["warnings"]) == bool(loaded)  # entries timed on a loaded machine are said on screen
    assert all(f"warning: {w}" in " ".join(stderr.split()) for w in data["warnings"])
    lut = load_lut(out)
    assert lut.threads == 1 and lut.statistic == "median" and lut.protocol["max_repeats"] == 5


@pytest.mark.parametrize(
    "args,words",
    [
        (["--threads", "0"], "--threads 0"),
        (["--clock", "sundial"], "--clock 'sundial'"),
        (["--clock", "cpu", "--threads", "2"], "--clock cpu measures latency only with --threads 1"),
        (["--space", "squeezenet"], "--space 'squeezenet'"),
        (["--target", "nowhere"], "unknown target 'nowhere'"),
    ],
)
def test_build_command_bad_options(tmp_path, capsys, args, words):
    base = [
        "lut",
        "build",
        "--space",
        "fbnet",
        "--target",
        "cpu-ort",
        "--input-shape",
        "1x3x32x32",
        "--cache",
        str(tmp_path),
        "-o",
        str(tmp_path / "x.json"),
    ]
    code, _, err = _run(base + args, capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_predict_command(fbnet_lut, tmp_path, capsys):
    lut = load_lut(fbnet_lut)
    geno = sample_genotypes(lut, 1, 0)[0]
    arch = parse_arch(
        {
            "format": "deploycc-arch",
            "version": 1,
            "name": "pick",
            "space": "fbnet",
            "genotype": geno,
            "input_shape": [1, 3, 32, 32],
        }
    )
    path = save_arch(arch, tmp_path / "pick.json")
    code, stdout, _ = _run(["lut", "predict", str(path), "--lut", str(fbnet_lut), "--breakdown", "--json"], capsys)
    row = json.loads(stdout)["predictions"][0]
    assert code == 0 and row["predicted_ms"] == pytest.approx(sum(b["ms"] for b in row["breakdown"]))
    code, _, err = _run(["lut", "predict", "fbnet_a", "--lut", str(fbnet_lut), "--input-shape", "1x3x32x32"], capsys)
    assert code == 2 and "outside the LUT's space" in err
    code, _, err = _run(["lut", "predict", "mac_small", "--lut", str(fbnet_lut)], capsys)
    assert code == 2 and "space 'squeezenas'" in err


def test_validate_command_writes_plot_report_and_figures(fbnet_lut, tmp_path, capsys):
    folder = tmp_path / "val"
    code, stdout, err = _run(
        [
            "lut",
            "validate",
            "--lut",
            str(fbnet_lut),
            "--n",
            "6",
            "--train",
            "3",
            "--seed",
            "1",
            "-o",
            str(folder),
            "--format",
            "html",
            "--cache",
            str(tmp_path / "c"),
            "--profile",
            "1",
            "--retest",
            "2",
            "--json",
        ],
        capsys,
    )
    result = json.loads(stdout)
    assert code == 0 and result["n"] == 6 and result["n_test"] == 3
    # three held-out architectures: the figures come with a word about the sample size, on screen too;
    # and the LUT (built without --anchor) against an anchored ground truth: a word about the mix
    warning, mixed = result["warnings"]
    assert "rest on 3 architecture(s) (of 6 sampled)" in warning and "1 time in 6" in warning
    assert "entries are not anchored but the ground truth is" in mixed and result["anchoring"]["scale"] == "run"
    assert f"warning: {warning}" in " ".join(err.split()) and f"warning: {mixed}" in " ".join(err.split())
    assert (folder / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (folder / "report.html").read_text()
    assert "fusion-corrected" in page and "Kendall" in page and "scatter.png" in page
    rows = result["architectures"]
    errors = [abs(r["raw_ms"] - r["measured_ms"]) / r["measured_ms"] for r in rows]
    assert result["raw_all"]["mape_pct"] == pytest.approx(100 * sum(errors) / len(errors))
    assert set(result["held_out"]) == {"raw", "corrected", "affine", "learned", "macs"}
    # anchored by default: every architecture a ratio to the anchor network, interval reached or its width recorded
    anchoring = result["anchoring"]
    assert anchoring["mode"] == "ratio" and anchoring["anchor_median_ms"] > 0 and anchoring["ci95_pct_max"] > 0
    floor = result["noise_floor"]  # --retest 2: two architectures measured again, scored like a predictor
    assert floor["n"] == 2 and floor["indices"] == [1, 5] and floor["mape_pct"] >= 0
    assert "noise floor (test-retest 2)" in page and "learned residual" in page
    view = result["per_layer"]  # --profile 1: LUT entries against in-network times
    assert view["architectures"] == 1 and {r["layer"] for r in view["rows"]} >= {"stem", "head", "layer 0"}
    assert all(r["in_network_ms"] >= 0 for r in view["rows"]) and "Per unit inside the network" in page
    assert json.loads((folder / "result.json").read_text())["n"] == 6


def test_validate_without_the_anchor_ratio(fbnet_lut, tmp_path, capsys):
    args = ["--n", "5", "--train", "3", "--retest", "0", "--no-anchor", "-o", str(tmp_path / "v"), "--json"]
    code, stdout, _ = _run(["lut", "validate", "--lut", str(fbnet_lut), "--cache", str(tmp_path), *args], capsys)
    result = json.loads(stdout)
    assert code == 0 and result["anchored"] is False and result["noise_floor"] is None
    assert result["anchoring"]["mode"] == "group" and result["anchoring"]["rule"] is None  # the older group scaling


def test_loaded_measurements_and_small_samples_are_warned_about():
    from deploycc.cli.cmd_lut import load_warnings, sample_size_warnings

    quiet = {"load": {"loaded": False, "before": {"reasons": []}}}
    busy = {"load": {"loaded": True, "before": {"reasons": ["3 other runnable task(s) for 1 free CPU(s)"]}}}
    assert load_warnings([quiet, quiet]) == []
    (line,) = load_warnings([quiet, busy])
    assert line.startswith("1 of 2 entries were timed on a loaded or unsteady machine (3 other runnable task(s)")
    assert "--on-load refuse" in line
    assert sample_size_warnings({"n": 50, "n_test": 30}) == []
    assert "rest on 9 architecture(s)" in sample_size_warnings({"n": 20, "n_test": 9})[0]


def test_validate_command_bad_input(fbnet_lut, tmp_path, capsys):
    for args, words in (
        (["--n", "3"], "--n 3"),
        (["--n", "6", "--train", "5"], "--train 5"),
        (["--format", "pdf"], "--format 'pdf'"),
        (["--profile", "-1"], "--profile -1"),
        (["--retest", "-1"], "--retest -1"),
        (["--on-load", "sometimes"], "--on-load 'sometimes'"),
    ):
        code, _, err = _run(["lut", "validate", "--lut", str(fbnet_lut), "--cache", str(tmp_path), *args], capsys)
        assert code == 2 and words in err


@pytest.fixture(scope="module")
def artifact(fbnet_lut, tmp_path_factory):
    """An FBNet architecture of the LUT's space, built for cpu-ort at 1x3x32x32."""
    folder = tmp_path_factory.mktemp("art")
    geno = sample_genotypes(load_lut(fbnet_lut), 1, 7)[0]
    arch = parse_arch(
        {
            "format": "deploycc-arch",
            "version": 1,
            "name": "gate",
            "space": "fbnet",
            "genotype": geno,
            "input_shape": [1, 3, 32, 32],
        }
    )
    path = save_arch(arch, folder / "gate.json")
    assert (
        main(
            ["build", str(path), "--target", "cpu-ort", "-o", str(folder / "gate.cpu-ort"), "--threads", "1", "--json"]
        )
        == 0
    )
    return folder / "gate.cpu-ort"


def test_gate_passes_within_the_limit_and_fails_beyond_it(artifact, fbnet_lut, tmp_path, capsys):
    code, stdout, _ = _run(
        ["lut", "check", str(artifact), "--lut", str(fbnet_lut), "--max-latency-error", "1e6", "--json"], capsys
    )
    result = json.loads(stdout)
    assert code == 0 and result["ok"] and result["predicted_ms"] > 0 and result["measured_ms"] > 0
    # the same LUT claiming every entry takes 100x longer: the gate must fail with exit 1
    lut = load_lut(fbnet_lut)
    for entry in lut.entries.values():
        for k in list(entry.get("latency", {})):
            if k.endswith("_ms"):
                entry["latency"][k] *= 100
    slow = save_lut(lut, tmp_path / "slow.json")
    code, _, err = _run(["lut", "check", str(artifact), "--lut", str(slow), "--max-latency-error", "50"], capsys)
    assert code == 1 and "latency gate failed" in err and len(err.strip().splitlines()) == 1


def test_gate_bad_input(artifact, fbnet_lut, tiny_onnx, tmp_path, capsys):
    code, _, err = _run(["lut", "check", str(artifact), "--lut", str(fbnet_lut), "--max-latency-error", "0"], capsys)
    assert code == 2 and "--max-latency-error 0" in err
    code, _, err = _run(
        ["lut", "check", str(artifact), "--lut", str(fbnet_lut), "--max-latency-error", "10", "--arch", "fbnet_a"],
        capsys,
    )
    assert code == 2 and "outside the LUT's space" in err
    assert main(["build", str(tiny_onnx), "--target", "cpu-ort", "-o", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    code, _, err = _run(
        ["lut", "check", str(tmp_path / "plain"), "--lut", str(fbnet_lut), "--max-latency-error", "10"], capsys
    )
    assert code == 2 and "records no architecture" in err


def test_verify_command_carries_the_latency_gate(artifact, fbnet_lut, tmp_path, capsys):
    code, stdout, _ = _run(
        ["verify", str(artifact), "--lut", str(fbnet_lut), "--max-latency-error", "1e6", "--json"], capsys
    )
    report = json.loads(stdout)
    assert code == 0 and report["latency"]["measured_ms"] > 0
    assert [g["gate"] for g in report["gates"]] == ["max-latency-error"]
    lut = load_lut(fbnet_lut)
    for entry in lut.entries.values():
        entry.get("latency", {}).update({k: v * 100 for k, v in entry.get("latency", {}).items() if k.endswith("_ms")})
    slow = save_lut(lut, tmp_path / "slow.json")
    code, _, err = _run(["verify", str(artifact), "--lut", str(slow), "--max-latency-error", "50"], capsys)
    assert code == 1 and "max-latency-error" in err
    code, _, err = _run(["verify", str(artifact), "--max-latency-error", "5"], capsys)
    assert code == 2 and "--max-latency-error needs --lut" in err


def test_build_profiled_command(tmp_path, capsys):
    out = tmp_path / "p.lut.json"
    common = ["lut", "build", "--space", "fbnet", "-t", "cpu-ort", "--input-shape", "1x3x32x32", "-o", str(out)]
    args = [*common, "--units", "k3_e1,k5_e1_g2", "--mode", "profiled", "--cover", "1", "--cache", str(tmp_path)]
    code, stdout, _ = _run([*args, "--json"], capsys)
    data = json.loads(stdout)
    assert code == 0 and data["mode"] == "profiled" and load_lut(out).protocol["networks"] == 2
    for extra, words in (
        (["--mode", "isolated", "--cover", "2"], "--cover applies to --mode profiled only"),
        (["--mode", "profiled", "--max-repeats", "9"], "--max-repeats does not apply to --mode profiled"),
        (["--mode", "profiled", "--cover", "0"], "--cover 0"),
        (["--mode", "sideways"], "choose isolated, in-context or profiled"),
    ):
        code, _, err = _run([*common, "--overwrite", *extra], capsys)
        assert code == 2 and words in " ".join(err.split())
