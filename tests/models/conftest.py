"""Shared fixtures for the deploycc.models tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SQUEEZENAS_DATA = (REPO.parent / "shared" / "data" / "squeezenas").resolve()


@pytest.fixture
def published():
    """Path of a published state dict (``mac_small`` / ``lat_small``), or skip when absent."""

    def get(name: str) -> Path:
        p = SQUEEZENAS_DATA / f"{name}.pth"
        if not p.is_file():
            pytest.skip(
                f"published SqueezeNAS weights not found at {p} (the shared data folder beside the repo is absent)"
            )
        return p

    return get


@pytest.fixture
def zoo_dict():
    """A fresh, mutable copy of a zoo architecture's JSON dict."""
    from deploycc.models import zoo_path

    def get(name: str) -> dict:
        return copy.deepcopy(json.loads(zoo_path(name).read_text()))

    return get
