"""A cache entry whose product fails a later gate is removed with it, so one bad entry costs one
failed build, not every later one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deploycc.core.cache import seal
from deploycc.core.errors import GateFailed
from deploycc.pipeline.pipeline import build


def _scale(payload, factor):
    for td in payload["data"].values():
        for key in ("lowest", "highest"):
            v = td[key]
            if isinstance(v, dict):
                v["data"] = (np.asarray(v["data"]) * factor).tolist()
            else:
                td[key] = v * factor
    return payload


def test_ranges_that_give_an_artifact_below_the_floor_are_removed(tmp_path, tiny_onnx, monkeypatch, capsys):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    build(str(tiny_onnx), "cpu-int8", tmp_path / "a")
    (entry,) = (tmp_path / "cache" / "calibration").glob("*.json")
    sealed = json.loads(entry.read_text())
    entry.write_text(seal("calibration", sealed["key"], _scale(sealed["payload"], 1000.0)))  # valid hash, nonsense
    with pytest.raises(GateFailed, match="FP32"):
        build(str(tiny_onnx), "cpu-int8", tmp_path / "b")
    assert not entry.exists() and "below the FP32 floor; removed" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
    again = build(str(tiny_onnx), "cpu-int8", tmp_path / "b")  # calibrates afresh and holds
    assert again.log["quantization"]["ranges_cache_hit"] is False and (tmp_path / "b").is_dir()
