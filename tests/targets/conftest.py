"""Fixtures for the target tests: the small image net (in memory and on disk), a private calibration cache."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from int8_nets import small_net


@pytest.fixture
def net():
    return small_net()


@pytest.fixture
def net_onnx(tmp_path) -> Path:
    path = tmp_path / "net.onnx"
    onnx.save(small_net(), path)
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
