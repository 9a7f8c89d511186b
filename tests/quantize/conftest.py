"""Fixtures for the INT8 tests: the small image net, a private calibration cache per test."""

from __future__ import annotations

import pytest
from int8_nets import small_net


@pytest.fixture
def net():
    return small_net()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test calibrates into its own cache folder (no state shared between tests)."""
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
