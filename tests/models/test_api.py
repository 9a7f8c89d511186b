"""Building blocks for the latency LUT: searchable layers, single units, stem and head."""

from __future__ import annotations

import random

import pytest
import torch

from deploycc.core.errors import UserError
from deploycc.models import (
    build_head,
    build_module,
    build_stem,
    build_unit,
    resolve_arch,
    sample_genotype,
    searchable_layers,
    unit_codes,
)
from deploycc.models.macs_torch import count_macs


def test_searchable_layers_mac_small():
    layers = searchable_layers(resolve_arch("mac_small"))
    assert len(layers) == 20
    first, low = layers[0], layers[7]
    assert (first.c_in, first.c_out, first.stride, first.in_h, first.in_w) == (16, 16, 2, 512, 1024)
    assert (low.c_out, low.in_h, low.in_w, low.unit) == (24, 128, 256, "k3e1g2d2")
    assert (layers[-1].c_in, layers[-1].c_out, layers[-1].in_h) == (96, 96, 64)


@pytest.mark.parametrize(
    "name,shape", [("mac_small", [1, 3, 784, 800]), ("lat_xlarge", [1, 3, 128, 256]), ("fbnet_a", [1, 3, 224, 224])]
)
def test_pieces_compose_to_the_whole(name, shape):
    """stem -> units at their LayerInfo shapes -> head: shapes chain and MACs add up."""
    arch = resolve_arch(name).with_input_shape(shape)
    layers = searchable_layers(arch)
    stem, head = build_stem(arch), build_head(arch)
    macs = count_macs(stem, shape).total
    with torch.no_grad():
        x = stem(torch.zeros(shape))
        assert tuple(x.shape) == layers[0].input_shape
        for info in layers:
            unit = build_unit(arch.space, info.unit, info.c_in, info.c_out, info.stride)
            macs += count_macs(unit, info.input_shape).total
            x = unit(torch.zeros(info.input_shape))
            nxt = layers[info.index + 1].input_shape if info.index + 1 < len(layers) else None
            assert nxt is None or tuple(x.shape) == nxt
        inputs = [torch.zeros(s) for s in head.input_shapes]
        assert tuple(x.shape) == head.input_shapes[0]
        y = head(*inputs)
    full = build_module(arch)
    assert y.shape == full(torch.zeros(shape)).shape
    macs += _head_macs(head)
    assert macs == count_macs(full, shape).total


def _head_macs(head):
    """count_macs takes one input; the SqueezeNAS head takes two, so hook it here."""
    total = 0

    def hook(m, _i, out):
        nonlocal total
        if isinstance(m, torch.nn.Conv2d):
            total += out.numel() * m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        elif isinstance(m, torch.nn.Linear):
            total += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in head.modules()]
    with torch.no_grad():
        head(*[torch.zeros(s) for s in head.input_shapes])
    for h in hs:
        h.remove()
    return total


@pytest.mark.parametrize("space", ["squeezenas", "fbnet"])
def test_every_unit_builds_at_both_strides(space):
    for code in unit_codes(space):
        for c_in, c_out, stride in [(16, 16, 1), (16, 24, 2), (24, 32, 1)]:
            unit = build_unit(space, code, c_in, c_out, stride)
            y = unit(torch.zeros(1, c_in, 32, 32))
            assert tuple(y.shape) == (1, c_out, 32 // stride, 32 // stride)
            assert not unit.training


def test_build_unit_errors():
    with pytest.raises(UserError, match="unknown unit 'k7e6'"):
        build_unit("squeezenas", "k7e6", 16, 16, 1)
    with pytest.raises(UserError, match="divisible"):
        build_unit("fbnet", "k3_e1_g2", 15, 16, 1)
    with pytest.raises(UserError, match="unknown space"):
        build_unit("mnas", "skip", 16, 16, 1)


def test_skip_variants():
    assert build_unit("squeezenas", "skip", 16, 16, 1).op.__class__.__name__ == "Identity"
    assert list(build_unit("squeezenas", "skip", 16, 24, 1).state_dict()) == [
        "op.1.weight",
        "op.2.weight",
        "op.2.bias",
        "op.2.running_mean",
        "op.2.running_var",
        "op.2.num_batches_tracked",
    ]
    x = torch.randn(1, 16, 8, 8)
    assert torch.equal(build_unit("squeezenas", "skip", 16, 16, 1)(x), x)
    assert torch.equal(build_unit("fbnet", "skip", 16, 16, 1)(x), x)


@pytest.mark.parametrize(
    "space,backbone,n",
    [("squeezenas", "small", 20), ("squeezenas", "large", 22), ("squeezenas", "xlarge", 22), ("fbnet", None, 22)],
)
def test_sample_genotype(space, backbone, n):
    rng = random.Random(3)
    geno = sample_genotype(space, rng, backbone=backbone or "small")
    assert len(geno) == n and set(geno) <= set(unit_codes(space))
    assert geno == sample_genotype(space, random.Random(3), backbone=backbone or "small")


def test_sample_genotype_errors():
    with pytest.raises(UserError):
        sample_genotype("squeezenet", random.Random(0))
    with pytest.raises(UserError, match="backbone"):
        sample_genotype("squeezenas", random.Random(0), backbone="tiny")
