"""The INT8 floor against FP32 holds the class of issue 25 its cosine let through: calibration
ranges scaled and resealed (a valid hash) give street_ref a cosine of 0.98 against FP32 at x11
while costing tens of agreement-mIoU points; the rescale probe refuses them, and the clean build
passes (docs/targets.md, "The INT8 floor")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploycc.core.cache import seal
from deploycc.core.errors import GateFailed
from deploycc.pipeline.pipeline import build
from deploycc.quantize.floor import rescaled_ranges
from deploycc.quantize.qdq import Ranges, ranges_of

STREET_REF = "models/zoo/trained/street_ref.onnx"


def _reseal_scaled(entry, factor: float) -> None:
    sealed = json.loads(entry.read_text())
    ranges = Ranges(ranges_of(sealed["payload"]), entry, True, 0.0, sealed["key"], sealed["payload"])
    scaled = rescaled_ranges(ranges, factor)
    assert all(scaled.values[k] == pytest.approx((lo * factor, hi * factor)) for k, (lo, hi) in ranges.values.items())
    assert ranges_of(sealed["payload"]) == ranges.values  # the original is left as it was
    entry.write_text(seal("calibration", sealed["key"], scaled.tensors))


@pytest.mark.parametrize("factor", [11.0])
def test_scaled_and_resealed_ranges_fail_the_floor_that_the_clean_build_passes(tmp_path, monkeypatch, factor):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    clean = build(STREET_REF, "cpu-int8", tmp_path / "clean").manifest["verification"]["fp32_floor"]
    assert clean["ok"] and clean["rescale"]["gain"] <= clean["rescale"]["max_gain"]
    (entry,) = (tmp_path / "cache" / "calibration").glob("*.json")
    _reseal_scaled(entry, factor)
    with pytest.raises(GateFailed, match="not what calibration gives") as failed:
        build(STREET_REF, "cpu-int8", tmp_path / "scaled")
    floor = failed.value.result.manifest["verification"]["fp32_floor"]
    assert floor["cosine_min"] >= floor["min_cosine"]  # the cosine alone would have let it through
    assert floor["rescale"]["gain"] > floor["rescale"]["max_gain"] and "differs" in floor["rescale"]["ranges"]
    assert not (tmp_path / "scaled").exists() and not entry.exists()  # the entry goes with its product


def test_a_beaten_cache_entry_is_refused_only_when_it_differs_from_a_calibration_made_now(tmp_path, monkeypatch):
    from dataclasses import replace as with_ranges

    from deploycc.core.scratch import scratch_dir
    from deploycc.pipeline.pipeline import BuildOptions, _run_target_passes, simplify
    from deploycc.pipeline.sources import load_source
    from deploycc.quantize.floor import ranges_verdict
    from deploycc.quantize.stage import quantize_for_target
    from deploycc.targets import load_target

    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    target, options = load_target("cpu-int8"), BuildOptions()
    with scratch_dir() as scratch:
        original, source = load_source(STREET_REF, Path(scratch))
        graph, _ = _run_target_passes(simplify(original, source), target, options)
        fresh = quantize_for_target(graph, original, target, options)
        cached = quantize_for_target(graph, original, target, options)
    assert fresh is not None and cached is not None and cached.ranges.cache_hit and not fresh.ranges.cache_hit
    assert ranges_verdict(fresh, beaten=True)["ok"]  # calibrated in this build: reported, not gated
    assert ranges_verdict(cached, beaten=True) == {
        "ok": True,
        "ranges": "the cache entry equals a calibration made now (a rescale does better)",
    }
    distorted = with_ranges(cached, ranges=rescaled_ranges(cached.ranges, 2.0))
    assert not ranges_verdict(distorted, beaten=True)["ok"]
