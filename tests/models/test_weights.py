"""Strict weight loading: every mistake is a one-line UserError naming the file."""

from __future__ import annotations

import pytest
import torch

from deploycc.core.errors import UserError
from deploycc.models import build_module, load_weights, resolve_arch


@pytest.fixture
def net():
    return build_module(resolve_arch("squeezenet1_1"))


def test_round_trip(net, tmp_path):
    p = tmp_path / "w.pth"
    torch.save(net.state_dict(), p)
    other = build_module(resolve_arch("squeezenet1_1"))
    load_weights(other, p)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values()))


def test_torchvision_names(net):
    keys = list(net.state_dict())
    assert keys[:2] == ["features.0.weight", "features.0.bias"]
    assert "features.3.squeeze.weight" in keys and "features.12.expand3x3.bias" in keys
    assert keys[-2:] == ["classifier.1.weight", "classifier.1.bias"]


def test_missing_file(net, tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_weights(net, tmp_path / "none.pth")


def test_corrupt_file(net, tmp_path):
    p = tmp_path / "corrupt.pth"
    p.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(UserError, match=r"corrupt\.pth: not a readable"):
        load_weights(net, p)


def test_truncated_file(net, tmp_path):
    p = tmp_path / "trunc.pth"
    torch.save(net.state_dict(), p)
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(UserError, match=r"trunc\.pth"):
        load_weights(net, p)


def test_not_a_state_dict(net, tmp_path):
    p = tmp_path / "list.pth"
    torch.save([1, 2, 3], p)
    with pytest.raises(UserError, match="not a state dict"):
        load_weights(net, p)


def test_missing_and_unexpected_keys(net, tmp_path):
    sd = net.state_dict()
    sd["extra.weight"] = torch.zeros(2)
    del sd["features.0.bias"]
    p = tmp_path / "keys.pth"
    torch.save(sd, p)
    with pytest.raises(UserError) as e:
        load_weights(net, p)
    msg = str(e.value)
    assert "keys.pth" in msg and "features.0.bias (64,)" in msg and "extra.weight (2,)" in msg
    assert "\n" not in msg


def test_shape_mismatch(net, tmp_path):
    sd = net.state_dict()
    sd["classifier.1.weight"] = torch.zeros(10, 512, 1, 1)
    p = tmp_path / "shape.pth"
    torch.save(sd, p)
    with pytest.raises(
        UserError,
        match=r"classifier.1.weight file \(10, 512, 1, 1\) vs model "
        r"\(1000, 512, 1, 1\)",
    ):
        load_weights(net, p)


def test_wrong_arch_weights(published):
    with pytest.raises(UserError, match=r"lat_small\.pth: weights do not match"):
        load_weights(build_module(resolve_arch("mac_small")), published("lat_small"))
