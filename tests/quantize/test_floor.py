"""The INT8 floor against FP32 holds the class of issue 25 its cosine let through: calibration
ranges scaled and resealed (a valid hash) give street_ref a cosine of 0.98 against FP32 at x11
while costing tens of agreement-mIoU points; the rescale probe refuses them, and the clean build
passes (docs/targets.md, "The INT8 floor")."""

from __future__ import annotations

import json

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
