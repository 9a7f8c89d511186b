"""The six SqueezeNAS nets as Xavier INT8 bundles: what TensorRT reads passes its offline checks
(the calibration cache holds the Q/DQ model's scales, and INT8 simulated from it is the Q/DQ
model, bit for bit). Full nets: slow, left out of the default run."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploycc.pipeline.pipeline import BuildOptions, build

pytestmark = pytest.mark.slow

SIX = ["mac_small", "lat_small", "mac_large", "lat_large", "mac_xlarge", "lat_xlarge"]
# the smallest sizes the heads take (LR-ASPP: 784; ASPP: any multiple of 16)
SMALL = {name: (1, 3, 256, 512) if "xlarge" in name else (1, 3, 784, 784) for name in SIX}
WEIGHTS = (Path(__file__).resolve().parents[3].parent / "shared" / "data" / "squeezenas").resolve()


def _checks(result) -> dict:
    checks = result.manifest["trt_offline_checks"]
    return {k: c["status"] for k, c in checks.items() if k != "failures"}


@pytest.mark.parametrize("target", ["xavier-int8", "xavier-dla-int8"])
@pytest.mark.parametrize("name", SIX)
def test_zoo_net_bundle_passes_the_offline_checks(name, target, tmp_path):
    result = build(name, target, tmp_path / name, BuildOptions(input_shape=SMALL[name]))
    assert _checks(result) == dict.fromkeys(("model_onnx", "calib_cache_ranges", "calib_cache_simulation"), "passed")
    assert result.manifest["trt_offline_checks"]["calib_cache_simulation"]["worst_max_abs"] == 0.0


@pytest.mark.parametrize("name", ["mac_small", "lat_small"])
def test_published_net_at_full_size_passes_the_offline_checks_and_the_floor(name, tmp_path):
    weights = WEIGHTS / f"{name}.pth"
    if not weights.is_file():
        pytest.skip(f"published SqueezeNAS weights not found at {weights} (the shared data folder is absent)")
    result = build(name, "xavier-int8", tmp_path / name, BuildOptions(weights=str(weights)))
    assert _checks(result) == dict.fromkeys(("model_onnx", "calib_cache_ranges", "calib_cache_simulation"), "passed")
    assert result.manifest["verification"]["fp32_floor"]["ok"]
