"""Fixtures of the passes tests; makes ``conv_chains`` (the random-chain generator) importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # pytest runs with --import-mode=importlib: no implicit sys.path entry
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def dla_target():
    """A stand-in for the Xavier DLA target (the DLA conv rules and Xavier's figures)."""
    from deploycc.targets import load_target

    return load_target(HERE / "xavier-dla-test.toml")
