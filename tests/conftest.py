"""Shared fixtures: a tiny golden model on disk, the published SqueezeNAS weights."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, SHARED_DATA, make_model


@pytest.fixture
def tiny_onnx(tmp_path) -> Path:
    """A Conv-BN-ReLU model saved as tiny.onnx."""
    path = tmp_path / "tiny.onnx"
    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",)), path)
    return path


@pytest.fixture
def squeezenas_weights() -> Path:
    folder = SHARED_DATA / "squeezenas"
    if not (folder / "mac_small.pth").is_file():
        pytest.skip(f"published SqueezeNAS weights not found at {folder} (shared data folder absent)")
    return folder
