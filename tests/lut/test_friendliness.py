"""Hardware friendliness: roofline, frontier, placement, reduced spaces accepted everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.lut import Predictor, load_lut
from deploycc.lut.friendliness import analyse, equal_macs, reduce
from deploycc.lut.profile import plan
from deploycc.lut.space import load_space, save_space
from deploycc.lut.table import save_lut

KEEP = ("k3_e1", "k5_e1", "k5_e1_g2", "k5_e6", "skip")


def _slow_g2(spec):
    return 100.0 if spec.code == "k5_e1_g2" else 1.0


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory, make_lut):
    path = tmp_path_factory.mktemp("friendly") / "fbnet.lut.json"
    lut = make_lut(_slow_g2)
    for layer in lut.layers:  # five units keep the MAC counting short
        layer["candidates"] = {c: k for c, k in layer["candidates"].items() if c in KEEP}
    save_lut(lut, path)
    return path


@pytest.fixture(scope="module")
def analysis(lut_file):
    return analyse(load_lut(lut_file))


def test_frontier_roofline_and_placement(lut_file, analysis):
    a = analysis
    assert "k5_e1_g2" in a["never_on_frontier"] and "k5_e6" not in a["never_on_frontier"]
    cell = next(c for c in a["cells"] if c["unit"] == "k5_e6" and c["layer"] == 3)
    roof = 1e3 * max(2 * cell["gmacs"] * 1e9 / 195e9, cell["mb"] * 1e6 / 25e9)
    assert cell["roofline_ms"] == pytest.approx(roof) and cell["efficiency"] == pytest.approx(roof / 1.0)
    assert cell["ms_per_gmac"] == pytest.approx(1.0 / cell["gmacs"])
    k3 = next(p for p in a["placement"] if p["unit"] == "k5_e6")
    values = list(k3["ms_per_gmac"].values())
    assert k3["spread"] == pytest.approx(max(values) / min(values)) and k3["spread"] > 1


def test_reduced_space_is_accepted_by_predictor_build_plan_and_cli(lut_file, analysis, tmp_path, capsys):
    lut = load_lut(lut_file)
    space = reduce([lut], [analysis])
    assert all("k5_e1_g2" not in units for units in space.layers)
    path = save_space(space, tmp_path / "reduced.json")
    again = load_space(path)
    pred = Predictor(lut, space=again)
    geno = [units[0] for units in again.layers]
    assert pred.predict([geno])[0] == pytest.approx(Predictor(lut).predict([geno])[0])
    bad = list(geno)
    bad[1] = "k5_e1_g2"
    with pytest.raises(UserError, match="outside the LUT's space"):
        pred.predict([bad])
    from deploycc.lut.entries import template_arch

    _, _, layers = plan(template_arch("fbnet", lut.input_shape), again)
    assert [sorted(c) for c in layers] == [sorted(u) for u in again.layers]
    rows = equal_macs(lut, again, analysis, n=300, bins=3)
    assert sum(r["full"]["n"] for r in rows) >= 300 and all(r["gmacs"][0] <= r["gmacs"][1] for r in rows)
    # the CLI: report, reduced space, and refusals
    html, red = tmp_path / "f.html", tmp_path / "r.json"
    other = load_lut(lut_file)  # a second target whose g2 unit is not slow
    other.target = {**other.target, "name": "cpu"}
    for _key, entry in other.entries.items():
        if entry.get("code") == "k5_e1_g2":
            entry["latency"] = {"median_ms": 0.5, "min_ms": 0.5}
    save_lut(other, tmp_path / "cpu.lut.json")
    assert (
        run_cli(["lut", "friendliness", lut_file, tmp_path / "cpu.lut.json", "--html", html, "--reduce", red, "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert html.read_text().count("data:image/png;base64,") == 2
    # the same with the flags every lut command takes (--lut, --report)
    args = ["lut", "friendliness", "--lut", lut_file, "--lut", tmp_path / "cpu.lut.json", "--json"]
    assert run_cli([*args, "--report", tmp_path / "g.html"]) == 0
    assert json.loads(capsys.readouterr().out)["comparison"] == data["comparison"]
    assert run_cli(["lut", "friendliness", "--report", tmp_path / "g.txt", lut_file]) == 2
    assert run_cli(["lut", "friendliness"]) == 2
    assert "--lut A.lut.json --lut B.lut.json" in capsys.readouterr().err
    comp = data["comparison"]
    assert comp["targets"] == ["cpu-ort", "cpu"] and "k5_e1_g2" not in comp["never_on_frontier"]["cpu"]
    assert comp["efficiency"]["k5_e1_g2"][1] > comp["efficiency"]["k5_e1_g2"][0]
    assert any("k5_e1_g2" in units for units in load_space(red).layers)  # kept: on the frontier of "cpu"
    arch = tmp_path / "a.json"
    from deploycc.models import parse_arch, save_arch

    save_arch(
        parse_arch(
            {
                "format": "deploycc-arch",
                "version": 1,
                "name": "a",
                "space": "fbnet",
                "genotype": bad,
                "input_shape": list(lut.input_shape),
            }
        ),
        arch,
    )
    assert run_cli(["lut", "predict", arch, "--lut", lut_file, "--space-file", path, "--allow-mismatch"]) == 2
    assert "outside the LUT's space" in capsys.readouterr().err


def test_space_file_refusals(tmp_path, lut_file):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(UserError, match="not a deploycc space file"):
        load_space(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(
        json.dumps(
            {
                "format": "deploycc-space",
                "version": 1,
                "space": "fbnet",
                "backbone": None,
                "input_shape": [1, 3, 32, 32],
                "layers": [["k9"]],
            }
        )
    )
    with pytest.raises(UserError, match="layer 0: k9 not in the fbnet space"):
        load_space(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(
        json.dumps(
            {
                "format": "deploycc-space",
                "version": 1,
                "space": "fbnet",
                "backbone": None,
                "input_shape": [1, 3, 32, 32],
                "layers": [["skip"]],
            }
        )
    )
    with pytest.raises(UserError, match="number of searchable layers"):
        Predictor(load_lut(lut_file), space=load_space(tmp_path / "z.json"))
    assert np.isfinite(Predictor(load_lut(lut_file)).table).any()
