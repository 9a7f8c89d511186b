"""Anchored isolated LUTs and anchored `lut check`: entries and measurements as ratios to the
anchor network, the LUT's record of them, and what happens when anchored and plain figures meet."""

from __future__ import annotations

import json

import pytest

from deploycc.cli.main import main
from deploycc.core.errors import UserError
from deploycc.lut import load_lut, save_lut
from deploycc.lut.anchored import default_anchor, lut_anchor
from deploycc.lut.measure_arch import sample_genotypes
from deploycc.models import parse_arch, save_arch
from deploycc.verify.measure import Protocol
from deploycc.verify.ratio import RatioRule

# entries 8 at a time, 2 runs per round; rounds until +-50 % or 4 rounds: seconds, not minutes
QUICK = Protocol(warmup=1, min_repeats=2, max_repeats=8, max_seconds=2.0, window=2, rounds=2, interleave=8)
RULE = RatioRule(target_pct=50.0, min_rounds=2, max_rounds=4, max_seconds=5.0)
UNITS = ["k3_e1", "skip"]


def _build(out, cache, ratio, progress=None):
    from deploycc.lut.profile import ProfileSettings, build_lut

    settings = ProfileSettings(target="cpu-ort", threads=1, protocol=QUICK, ratio=ratio)
    return build_lut("fbnet", out, settings, (1, 3, 32, 32), cache=cache, units=UNITS, progress=progress)


@pytest.fixture(scope="module")
def anchored_lut(lut_cache, tmp_path_factory):
    return _build(tmp_path_factory.mktemp("anchored") / "a.lut.json", lut_cache / "anchored", RULE).source


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_anchor_is_the_first_network_of_the_default_validation_sample(make_lut):
    lut = make_lut(lambda spec: 1.0)
    first = sample_genotypes(lut, 5, 0)[0]
    assert lut_anchor(lut) == first == default_anchor("fbnet", [row["candidates"] for row in lut.layers])
    assert sample_genotypes(lut, 5, 3)[0] != first or sample_genotypes(lut, 5, 4)[0] != first  # seeds differ


def test_anchored_entries_are_ratios_times_the_anchor_median_and_say_how_good(anchored_lut):
    lut = load_lut(anchored_lut)
    a = lut.anchoring
    assert a["mode"] == "ratio" and a["rule"] == RULE.to_dict() and a["anchor"]["median_ms"] > 0
    assert a["anchor"]["genotype"] == default_anchor("fbnet", [row["candidates"] for row in lut.layers])
    timed = [e for e in lut.entries.values() if e.get("measured", True)]
    assert a["entries"] == len(timed) >= 3 and 0 <= a["reached"] <= len(timed)
    for entry in timed:
        ratio = entry["ratio"]
        assert 2 <= ratio["rounds"] <= RULE.max_rounds and ratio["ci95_pct"] >= 0 and ratio["target_pct"] == 50.0
        assert entry["anchor"]["id"] == "anchor" and entry["anchor"]["round_ms"]
        assert entry["latency"]["median_ms"] == pytest.approx(ratio["ratio"] * a["anchor"]["median_ms"])
        assert entry["latency_raw"]["median_ms"] > 0  # what the clock said, kept beside
    assert a["ci95_pct_max"] == pytest.approx(max(e["ratio"]["ci95_pct"] for e in timed))


def test_an_anchored_cache_never_serves_a_plain_build(anchored_lut, lut_cache, tmp_path):
    events = []
    plain = _build(tmp_path / "plain.lut.json", lut_cache / "anchored", None, events.append)
    timed = {k for k, e in plain.entries.items() if e.get("measured", True)}
    assert plain.anchoring is None and not any(plain.entries[k].get("ratio") for k in timed)
    assert not [s.job for s in events if s.event == "cached" and s.job in timed]  # every timed entry measured again


def test_a_lut_mixing_anchored_and_plain_entries_is_refused(anchored_lut, fbnet_lut, tmp_path, capsys):
    lut = load_lut(anchored_lut)
    key = next(k for k, e in lut.entries.items() if e.get("measured", True))
    del lut.entries[key]["ratio"]
    mixed = save_lut(lut, tmp_path / "mixed.lut.json")
    with pytest.raises(UserError, match=f"{key}.*not anchored in an anchored LUT"):
        load_lut(mixed)
    for args in (["lut", "predict", "fbnet_a"], ["lut", "validate", "--n", "5"]):
        code, _, err = _run([*args, "--lut", str(mixed)], capsys)
        assert code == 2 and str(mixed) in err and len(err.strip().splitlines()) == 1
    plain = load_lut(fbnet_lut)
    key = next(k for k, e in plain.entries.items() if e.get("measured", True))
    plain.entries[key]["ratio"] = {"ratio": 1.0}
    with pytest.raises(UserError, match="anchored in a LUT that says it is not"):
        load_lut(save_lut(plain, tmp_path / "claims.lut.json"))
    lut = load_lut(anchored_lut)
    del lut.anchoring["anchor"]["genotype"]  # which network the entries are ratios to: unknown
    with pytest.raises(UserError, match="lacks its anchor network and median"):
        load_lut(save_lut(lut, tmp_path / "nameless.lut.json"))


@pytest.fixture(scope="module")
def artifact(anchored_lut, tmp_path_factory):
    """An architecture of the anchored LUT's space, built for cpu-ort at 1x3x32x32."""
    folder = tmp_path_factory.mktemp("anchored-art")
    geno = sample_genotypes(load_lut(anchored_lut), 1, 5)[0]
    arch = {"format": "deploycc-arch", "version": 1, "name": "gate", "space": "fbnet", "genotype": geno}
    path = save_arch(parse_arch({**arch, "input_shape": [1, 3, 32, 32]}), folder / "gate.json")
    assert main(["build", str(path), "--target", "cpu-ort", "-o", str(folder / "art"), "--threads", "1"]) == 0
    return folder / "art"


def _check(artifact, lut, capsys, *extra):
    args = ["lut", "check", str(artifact), "--lut", str(lut), "--max-latency-error", "1e6", "--json", *extra]
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    return json.loads(stdout), err


def test_check_of_an_anchored_lut_is_anchored_and_on_the_lut_scale(artifact, anchored_lut, capsys):
    lut = load_lut(anchored_lut)
    result, _ = _check(artifact, anchored_lut, capsys)
    a = result["anchoring"]
    assert a["anchored"] and a["scale"] == "lut" and a["anchor"]["genotype"] == lut.anchoring["anchor"]["genotype"]
    assert result["measured_ms"] == pytest.approx(a["ratio"]["ratio"] * lut.anchoring["anchor"]["median_ms"])
    assert a["speed_change_pct"] == pytest.approx(
        100 * (a["anchor"]["median_ms"] / lut.anchoring["anchor"]["median_ms"] - 1)
    )
    assert a["ratio"]["rounds"] >= 5 and result["warnings"] == []
    result, err = _check(artifact, anchored_lut, capsys, "--no-anchor")  # the LUT anchored, the measurement not
    assert (
        not result["anchoring"]["anchored"] and "LUT is anchored but this measurement is not" in result["warnings"][0]
    )
    assert "warning:" in err


def test_predict_measure_against_an_anchored_lut_is_flagged(artifact, anchored_lut, capsys):
    arch = str(artifact.parent / "gate.json")
    code, stdout, err = _run(["lut", "predict", arch, "--lut", str(anchored_lut), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["warnings"] == [] and json.loads(stdout)["anchored"]
    code, stdout, err = _run(["lut", "predict", arch, "--lut", str(anchored_lut), "--measure", "--json"], capsys)
    (warning,) = json.loads(stdout)["warnings"]
    assert code == 0 and "anchored but --measure (timed alone) is not" in warning and "warning:" in err


def test_check_of_a_plain_lut_follows_it_and_anchors_on_request(artifact, fbnet_lut, capsys):
    result, _ = _check(artifact, fbnet_lut, capsys)
    assert not result["anchoring"]["anchored"] and result["warnings"] == []  # as the LUT was built
    result, _ = _check(artifact, fbnet_lut, capsys, "--anchor")
    a = result["anchoring"]
    assert a["anchored"] and a["scale"] == "run" and a["speed_change_pct"] is None
    assert result["measured_ms"] == pytest.approx(a["ratio"]["ratio"] * a["anchor"]["median_ms"])
    assert "entries are not anchored but this measurement is" in result["warnings"][0]


def test_build_refuses_anchor_where_no_anchored_build_exists(tmp_path, capsys):
    common = [
        "lut",
        "build",
        "--space",
        "fbnet",
        "-t",
        "cpu-ort",
        "--input-shape",
        "1x3x32x32",
        "-o",
        str(tmp_path / "x"),
    ]
    for extra, words in (
        (["--mode", "profiled", "--anchor"], "--anchor applies to --mode isolated only"),
        (["--mode", "in-context", "--anchor"], "--anchor applies to --mode isolated only"),
        (["--anchor", "--remote", "127.0.0.1:9190", "--key", "k"], "a device fleet cannot time an anchor"),
    ):
        code, _, err = _run([*common, *extra], capsys)
        assert code == 2 and words in " ".join(err.split()) and not (tmp_path / "x").exists()


def test_validation_of_an_anchored_lut_is_on_its_scale(anchored_lut, lut_cache):
    from deploycc.lut.validate import ValidationPlan, validate

    lut = load_lut(anchored_lut)
    result = validate(lut, ValidationPlan(n=5, train=3, retest=0), lut_cache / "anchored-validate")
    a = result["anchoring"]
    assert a["mode"] == "ratio" and a["scale"] == "lut" and a["warning"] is None
    assert a["lut_anchor_median_ms"] == lut.anchoring["anchor"]["median_ms"]
    assert a["speed_change_pct"] == pytest.approx(100 * (a["anchor_median_ms"] / a["lut_anchor_median_ms"] - 1))
    # the first sampled network is the anchor itself: built once for both (a timer keeps its builds)
    assert result["architectures"][0]["genotype"] == lut.anchoring["anchor"]["genotype"]
    assert result["build_seconds"][0] == 0.0 and all(s > 0 for s in result["build_seconds"][1:])
