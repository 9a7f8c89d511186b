"""In-context LUTs: the reference network and its single-layer variants, end to end on cpu-ort."""

from __future__ import annotations

import json

import pytest
from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.lut import Predictor, load_lut
from deploycc.lut.context import build_context_lut, reference_genotype
from deploycc.lut.profile import ProfileSettings
from deploycc.lut.table import save_lut


def test_reference_rule_and_refusals():
    layers = [{"k3_e1": 1, "k3_e3": 2}, {"k5_e1": 1, "skip": 2}]
    assert reference_genotype(layers) == ["k3_e3", "k5_e1"]
    assert reference_genotype([{"k3e1": 1, "k3e3": 2}, {"skip": 1}]) == ["k3e3", "skip"]  # SqueezeNAS codes
    assert reference_genotype(layers, ["k3_e1", "skip"]) == ["k3_e1", "skip"]
    with pytest.raises(UserError, match="not a candidate at layer 1"):
        reference_genotype(layers, ["k3_e1", "k3_e3"])
    with pytest.raises(UserError, match="1 units, the space has 2"):
        reference_genotype(layers, ["k3_e1"])


def test_a_one_unit_space_is_the_reference_alone(lut_cache, tmp_path, K):
    out = tmp_path / "ctx.lut.json"
    lut = build_context_lut(
        "fbnet",
        out,
        ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST),
        K.SHAPE,
        statistic="min",
        cache=lut_cache / "lut",
        units=["k3_e1"],
    )
    again = load_lut(out)
    assert again.mode == "in-context" and again.reference == ["k3_e1"] * 22
    assert json.loads(out.read_text())["version"] == 2
    assert list(again.entries) == ["ctx/reference"]
    t_ref = again.entries["ctx/reference"]["latency"]["min_ms"]
    pred = Predictor(again)
    assert pred.predict([["k3_e1"] * 22])[0] == pytest.approx(t_ref)
    assert pred.breakdown(["k3_e1"] * 22)[0] == ("reference", "ctx/reference", pytest.approx(t_ref))
    assert lut.entry_ms("ctx/reference") == 0.0


def test_mode_and_version_must_agree(tmp_path, fbnet_lut):
    lut = load_lut(fbnet_lut)
    lut.mode, lut.reference = "in-context", ["k3_e1"]  # wrong length for the space
    save_lut(lut, tmp_path / "bad.json")
    with pytest.raises(UserError, match="does not fit its version"):
        load_lut(tmp_path / "bad.json")
    assert json.loads(fbnet_lut.read_text())["version"] == 1 and "mode" not in json.loads(fbnet_lut.read_text())


def test_cli_mode_refusals(tmp_path, capsys):
    assert run_cli(["lut", "build", "--target", "cpu-ort", "--mode", "both", "-o", tmp_path / "x.json"]) == 2
    assert "--mode" in capsys.readouterr().err
    assert run_cli(["lut", "build", "--target", "cpu-ort", "--reference", "k3_e1", "-o", tmp_path / "x.json"]) == 2
    assert "--reference" in capsys.readouterr().err
    assert run_cli(["lut", "build", "--target", "cpu-ort", "--on-load", "maybe", "-o", tmp_path / "x.json"]) == 2
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_single_layer_variants_are_predicted_exactly(lut_cache, tmp_path, K):
    lut = build_context_lut(
        "fbnet",
        tmp_path / "ctx.json",
        ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST),
        K.SHAPE,
        statistic="min",
        cache=lut_cache / "lut",
        units=["k3_e1", "k5_e1"],
    )
    pred = Predictor(lut)
    ref = list(lut.reference)
    for i in (0, 5, 21):
        geno = [*ref[:i], "k5_e1", *ref[i + 1 :]]
        measured = lut.entries[f"ctx/{i}/k5_e1"]["latency"]["min_ms"]
        assert pred.predict([geno])[0] == pytest.approx(measured)
