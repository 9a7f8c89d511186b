"""The LUT latency gate inside ``deploycc ci``: prediction from a hand-made LUT, real measurement.

The LUT has the real structure of the FBNet space at 1x3x32x32 (two candidate units) on
``cpu-ort`` with this machine's toolchain, and entry latencies chosen here, so the prediction is
known exactly: stem + head + one entry per layer.
"""

from __future__ import annotations

import json

import pytest

from deploycc.ci import load_config, run_ci

ENTRY_MS = 0.125


@pytest.fixture(scope="module")
def lut_and_arch(tmp_path_factory):
    from deploycc.lut.entries import template_arch
    from deploycc.lut.predict import Predictor
    from deploycc.lut.profile import _full_toolchain, plan, unique_specs
    from deploycc.lut.table import LUT, save_lut, target_digest
    from deploycc.models import save_arch
    from deploycc.targets import load_target

    folder = tmp_path_factory.mktemp("lut")
    target = load_target("cpu-ort")
    arch = template_arch("fbnet", (1, 3, 32, 32), None)
    stem, head, layers = plan(arch, ["skip", "k3_e1"])
    latency = {"median_ms": ENTRY_MS, "min_ms": ENTRY_MS, "mean_ms": ENTRY_MS, "p90_ms": ENTRY_MS}
    entries = {
        s.key: {**s.to_dict(), "measured": not s.identity, "latency": {} if s.identity else latency}
        for s in unique_specs(stem, head, layers)
    }
    rows = [{"index": i, "candidates": {c: s.key for c, s in cands.items()}} for i, cands in enumerate(layers)]
    lut = LUT(
        space="fbnet",
        backbone=None,
        head=arch.head,
        num_classes=arch.num_classes,
        input_shape=(1, 3, 32, 32),
        target={"name": "cpu-ort", "backend": "ort", "sha256": target_digest(target)},
        toolchain=_full_toolchain(target),
        threads=1,
        statistic="median",
        protocol={},
        stem=stem.key,
        head_entry=head.key,
        layers=rows,
        entries=entries,
    )
    save_lut(lut, folder / "fbnet.lut.json")
    genotype = ["k3_e1"] * len(layers)
    save_arch(Predictor(lut).arch_of(genotype, name="all_k3_e1"), folder / "all_k3_e1.json")
    expected = ENTRY_MS * (2 + len(layers))
    return folder, expected


def _config(folder, cache, limit: float):
    path = folder / f"lut-{limit:g}.toml"
    path.write_text(f"""
targets = ["cpu-ort"]
[project]
cache = "{cache}"
output = "reports"
[[models]]
source = "all_k3_e1.json"
[lut]
cpu-ort = "fbnet.lut.json"
[gates]
max_latency_error_pct = {limit}
""")
    return load_config(path)


def test_lut_gate_reports_prediction_and_fails_when_tightened(lut_and_arch, ci_cache):
    from deploycc.ci import write_reports

    folder, expected = lut_and_arch
    loose = run_ci(_config(folder, ci_cache, 1e6))
    pair = loose["pairs"][0]
    assert pair["status"] == "passed", pair["gates"]
    lat = pair["latency"]
    assert lat["predicted_ms"] == pytest.approx(expected)
    assert lat["error_pct"] == pytest.approx(100 * (expected - lat["measured_ms"]) / lat["measured_ms"])
    files = write_reports(loose, folder / "reports")
    assert files["plot_lut"].is_file() and "Predicted vs measured" in files["html"].read_text()
    tight = run_ci(_config(folder, ci_cache, 0.001))
    gate = next(g for g in tight["pairs"][0]["gates"] if g["gate"] == "max-latency-error")
    assert not tight["ok"] and gate["status"] == "failed" and gate["limit"] == 0.001
    assert tight["pairs"][0]["cache"] == "hit"
    assert json.loads(json.dumps(tight, default=str))["summary"]["failed"] == 1
