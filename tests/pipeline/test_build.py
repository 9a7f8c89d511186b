"""`deploycc build` end to end: artifacts, manifests, verification, run, determinism."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.core.numerics import run_reference
from deploycc.pipeline.artifact import read_manifest
from deploycc.pipeline.pipeline import BuildOptions, build


@pytest.mark.parametrize("target, files", [("cpu", {"model.so"}), ("cpu-ort", {"model.onnx"})])
def test_build_and_run_round_trip(tmp_path, tiny_onnx, target, files):
    out = tmp_path / "art"
    assert run_cli(["build", tiny_onnx, "-t", target, "-o", out, "--json"]) == 0
    manifest = read_manifest(out)
    assert set(manifest["files"]) == files
    assert manifest["target"]["name"] == target
    assert manifest["verification"]["ok"] is True
    assert manifest["passes"][0]["name"] == "fold-bn" and manifest["passes"][0]["modified"]
    assert manifest["inputs"] == [{"name": "image", "shape": [1, 3, 16, 16], "dtype": "float32"}]
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert run_cli(["run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"]) == 0
    y = np.load(tmp_path / "y.npy")
    ref = run_reference(onnx.load(tiny_onnx), {"image": x})[0]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_same_inputs_same_hashes(tmp_path, tiny_onnx):
    for name in ("a", "b"):
        build(str(tiny_onnx), "cpu", tmp_path / name)
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()


def test_tolerance_violation_exits_1_and_leaves_nothing(tmp_path, tiny_onnx, capsys):
    strict = tmp_path / "strict.toml"
    strict.write_text(
        'name = "strict"\nbackend = "tvm"\nprecision = "fp32"\npasses = ["fold-bn"]\n'
        "[verify]\natol_rel = 0.0\nrtol = 0.0\nmin_cosine = 1.0000001\n"
        '[tvm]\ntarget = { kind = "llvm", mcpu = "host" }\n'
    )
    out = tmp_path / "art"
    assert run_cli(["build", tiny_onnx, "-t", strict, "-o", out]) == 1
    assert "numerical verification failed" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".art*"))


def test_failed_build_keeps_previous_artifact(tmp_path, tiny_onnx):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", out)
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(UserError):
        build(str(tmp_path / "missing.onnx"), "cpu-ort", out)
    assert (out / "manifest.json").read_bytes() == before


def test_corrupt_artifact_is_refused(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", out)
    with open(out / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    assert run_cli(["run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"]) == 2
    assert "sha256" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()


def test_run_rejects_wrong_input_shape(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", out)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    assert run_cli(["run", out, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"]) == 2
    assert "expected [1, 3, 16, 16]" in capsys.readouterr().err


def test_bench_reports_latency(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", out)
    assert run_cli(["bench", out, "--json", "--max-repeats", "8", "--threads", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    lat = data["latency"]
    assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p99_ms"] and 5 <= lat["runs"] <= 8
    assert lat["threads"] == 1 and "cpu_model" in data["machine"]


def test_bench_threads_on_tvm_and_bad_repeats_are_refused(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu", out)
    for args, words in (
        (["--threads", "2"], "does not apply to TVM artifact"),
        (["--max-repeats", "-1"], "--max-repeats"),
        (["--max-seconds", "nan"], "--max-seconds"),
    ):
        assert run_cli(["bench", out, *args]) == 2
        assert words in capsys.readouterr().err
    assert run_cli(["bench", out, "--max-repeats", "3"]) == 0


def test_build_from_architecture_with_published_weights(tmp_path, squeezenas_weights):
    out = tmp_path / "mac_small"
    result = build(
        "mac_small",
        "cpu-ort",
        out,
        BuildOptions(input_shape=(1, 3, 784, 784), weights=str(squeezenas_weights / "mac_small.pth")),
    )
    assert result.ok
    fold = result.manifest["passes"][0]
    assert fold["ops_before"]["BatchNormalization"] == 60 and "BatchNormalization" not in fold["ops_after"]
    assert result.manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]


ZOO_SMALL = {
    "mac_small": (1, 3, 784, 784),
    "lat_small": (1, 3, 784, 784),
    "mac_large": (1, 3, 784, 784),
    "lat_large": (1, 3, 784, 784),
    "mac_xlarge": (1, 3, 256, 512),
    "lat_xlarge": (1, 3, 256, 512),
    "fbnet_a": (1, 3, 224, 224),
    "squeezenet1_1": (1, 3, 224, 224),
}


@pytest.mark.parametrize("name", sorted(ZOO_SMALL))
def test_every_zoo_net_builds_on_cpu_ort(tmp_path, name):
    result = build(name, "cpu-ort", tmp_path / name, BuildOptions(input_shape=ZOO_SMALL[name]))
    assert result.ok and all(o["cosine"] > 0.99999 for o in result.manifest["verification"]["outputs"])


@pytest.mark.parametrize("name", ["fbnet_a", "squeezenet1_1", "mac_xlarge"])
def test_zoo_nets_build_on_tvm(tmp_path, name):
    result = build(name, "cpu", tmp_path / name, BuildOptions(input_shape=ZOO_SMALL[name]))
    assert result.ok


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ZOO_SMALL))
def test_every_zoo_net_builds_on_tvm(tmp_path, name):
    assert build(name, "cpu", tmp_path / name, BuildOptions(input_shape=ZOO_SMALL[name])).ok


@pytest.mark.slow
def test_tuning_database_is_filled_and_reused(tmp_path, tiny_onnx):
    db = tmp_path / "db"
    tuned = build(
        str(tiny_onnx), "cpu", tmp_path / "t1", BuildOptions(tune_trials=4, trials_per_task=2, tuning_db=str(db))
    )
    records = db / "database_tuning_record.json"
    assert tuned.ok and records.is_file() and records.read_text().strip()
    reused = build(str(tiny_onnx), "cpu", tmp_path / "t2", BuildOptions(tuning_db=str(db)))
    facts = reused.manifest["backend_info"]["tuning_database"]
    assert facts["name"] == "db" and len(facts["records_sha256"]) == 64 and str(tmp_path) not in str(reused.manifest)
    assert reused.manifest["backend_info"]["tune_trials"] == 0 and reused.ok


@pytest.mark.parametrize("target", ["arm64-cpu", "mali-t628"])
def test_tuning_for_a_foreign_machine_is_refused_before_anything_is_built(tmp_path, tiny_onnx, target):
    """Tuning measures candidates here: for code that runs elsewhere that would time nothing real."""
    with pytest.raises(UserError, match=f"--tune-trials: target {target} runs on another kind of machine"):
        build(str(tiny_onnx), target, tmp_path / "out", BuildOptions(tune_trials=4))
    assert not (tmp_path / "out").exists()
