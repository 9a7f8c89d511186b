"""Property tests: random genotypes of both spaces parse, build and run a forward."""

from __future__ import annotations

import random

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploycc.models import build_module, parse_arch, sample_genotype

_SETTINGS = settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
# (backbone, input shape): LR-ASPP needs H, W >= 784; ASPP runs at any multiple of 16
# (the large backbone is covered by the zoo tests; at 784x784 it is too slow for many examples)
_SQUEEZENAS = [("small", [1, 3, 784, 784]), ("xlarge", [1, 3, 64, 96])]


def _arch(space: str, geno: list[str], **extra):
    return parse_arch(
        {"format": "deploycc-arch", "version": 1, "name": "sampled", "space": space, "genotype": geno, **extra},
        source="<sampled>",
    )


@_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 1), classes=st.integers(1, 21))
def test_random_squeezenas(seed, which, classes):
    backbone, shape = _SQUEEZENAS[which]
    geno = sample_genotype("squeezenas", random.Random(seed), backbone=backbone)
    arch = _arch("squeezenas", geno, backbone=backbone, num_classes=classes, input_shape=shape)
    with torch.no_grad():
        y = build_module(arch)(torch.randn(shape))
    assert y.shape == (1, classes, shape[2], shape[3]) and torch.isfinite(y).all()


@_SETTINGS
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([32, 64, 96]))
def test_random_fbnet(seed, size):
    geno = sample_genotype("fbnet", random.Random(seed))
    arch = _arch("fbnet", geno, num_classes=10, input_shape=[2, 3, size, size])
    with torch.no_grad():
        y = build_module(arch)(torch.randn(arch.input_shape))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(geno=st.lists(st.sampled_from(["k3e1", "k5e6", "skip", "k3e1g2d2", "bogus"]), min_size=18, max_size=22))
def test_arbitrary_genotypes_parse_or_user_error(geno):
    from deploycc.core.errors import UserError

    try:
        arch = _arch("squeezenas", geno, backbone="small")
    except UserError as e:
        assert "<sampled>" in str(e) and "genotype" in str(e)
    else:
        assert len(arch.genotype) == 20 and "bogus" not in arch.genotype
