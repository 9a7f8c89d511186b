"""Profiled LUTs: kernels of real ORT profiles of a small FBNet mapped to units, joins detected."""

from __future__ import annotations

import pytest

from deploycc.lut import load_lut
from deploycc.lut.entries import template_arch
from deploycc.lut.predict import Predictor
from deploycc.lut.profile import ProfileSettings, plan
from deploycc.lut.profiled import build_profiled_lut, covering_genotypes, profile_network

SHAPE = (1, 3, 32, 32)


def test_every_position_and_unit_is_covered_the_asked_number_of_times():
    layers = [["a", "b", "c"], ["a", "b"], ["c"]]
    genos = covering_genotypes(layers, cover=2, seed=0)
    assert len(genos) == 6  # three candidates at the first layer, twice each
    for i, cands in enumerate(layers):
        for c in cands:
            assert sum(g[i] == c for g in genos) >= 2
    assert covering_genotypes(layers, 2, 0) == genos  # fixed seed, same networks


def test_kernels_of_a_real_profile_map_to_units_and_reorders_join_them(lut_cache):
    from deploycc.models import parse_arch

    arch = template_arch("fbnet", SHAPE)
    # dense units (blocked NCHWc convolutions in ORT) next to grouped ones (plain NCHW): reorders between
    geno = ["k3_e6", "k5_e1_g2"] * (len(arch.genotype) // 2) + ["k3_e6"] * (len(arch.genotype) % 2)
    net = parse_arch({**arch.to_dict(), "genotype": geno, "name": "mixed"})
    record = profile_network(net, "cpu-ort", threads=1, runs=3)
    parts = record["parts"]
    assert {"stem", "head"} <= set(parts) and all(f"layer {i}" in parts for i in range(len(geno)))
    assert sum(parts.values()) == pytest.approx(record["total_ms"])  # shares of joined kernels add up
    joins = record["kernels"]
    assert joins and all(k["op_type"] in ("ReorderInput", "ReorderOutput") for k in joins)
    for k in joins:  # a join covers two neighbouring parts, with the units chosen there
        assert len(k["parts"]) == 2
        for part, unit in zip(k["parts"], k["units"]):
            assert unit == (geno[int(part.split()[1])] if part.startswith("layer ") else part)
        layer_parts = [int(p.split()[1]) for p in k["parts"] if p.startswith("layer ")]
        if len(layer_parts) == 2:
            assert layer_parts[1] == layer_parts[0] + 1


def test_profiled_lut_has_an_entry_per_position_and_unit_and_predicts(lut_cache, tmp_path):
    units = ["k3_e1", "k5_e1_g2"]
    first = []
    out = build_profiled_lut(
        "fbnet",
        tmp_path / "p.json",
        ProfileSettings(target="cpu-ort"),
        SHAPE,
        cache=lut_cache,
        progress=first.append,
        units=units,
        cover=1,
        build_workers=2,  # both networks compiled at once, in two processes, then profiled in turn
    )
    assert sorted((s.job, s.event) for s in first) == [("0", "done"), ("1", "done")]
    lut = load_lut(out.source)
    assert lut.mode == "profiled" and lut.protocol["networks"] == 2 and lut.protocol["cover"] == 1
    _, _, layers = plan(template_arch("fbnet", SHAPE), units)
    for i, cands in enumerate(layers):
        for code in cands:
            entry = lut.entries[lut.layers[i]["candidates"][code]]
            assert entry["latency"]["median_ms"] > 0 and entry["latency"]["runs"] == 1
    kernels = [e for e in lut.entries.values() if e["kind"] == "kernel"]
    assert kernels and all(e["latency"]["median_ms"] > 0 for e in kernels)  # joins kept as entries of their own
    pred = Predictor(lut)
    geno = [next(iter(c)) for c in layers]
    assert pred.predict([geno])[0] == pytest.approx(sum(ms for _, _, ms in pred.breakdown(geno)))
    # a second build profiles nothing: every network comes from the cache
    steps = []
    build_profiled_lut(
        "fbnet",
        tmp_path / "q.json",
        ProfileSettings(target="cpu-ort"),
        SHAPE,
        cache=lut_cache,
        progress=steps.append,
        units=units,
        cover=1,
    )
    assert [s.event for s in steps] == ["cached", "cached"]


def test_a_profiled_lut_is_validated_on_its_own_clock(lut_cache, tmp_path):
    from deploycc.lut.measure_arch import arch_protocol
    from deploycc.lut.profile import protocol_for

    settings = ProfileSettings(target="cpu-ort", protocol=protocol_for("median", clock="cpu"))
    lut = build_profiled_lut("fbnet", tmp_path / "c.json", settings, SHAPE, cache=lut_cache, units=["k3_e1"], cover=1)
    assert lut.protocol["clock"] == "cpu" and arch_protocol(lut).clock == "cpu"  # the isolated LUT's ground truth
