"""Fixtures for the LUT tests: a real (tiny) LUT built on cpu-ort, and synthetic LUTs.

The real LUT is the FBNet space at 1x3x32x32 on the ``cpu-ort`` target with a short protocol:
every entry is exported, built with the pipeline and timed for real, in a temporary cache.
Synthetic LUTs have the same structure with latencies chosen by the test, so that predictions
and statistics can be checked against hand-computed values.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from deploycc.verify.measure import Protocol

FAST = Protocol(warmup=1, min_repeats=3, max_repeats=5, max_seconds=2.0, window=2)
SHAPE = (1, 3, 32, 32)
UNITS = ["k3_e1", "k3_e6", "k5_e1_g2", "skip"]  # a reduced space keeps the session LUT quick


@pytest.fixture(scope="session")
def K():
    """The constants of the session LUT (protocol, input shape, units), for the tests to share."""
    from types import SimpleNamespace

    return SimpleNamespace(FAST=FAST, SHAPE=SHAPE, UNITS=UNITS)


@pytest.fixture(scope="session")
def lut_cache(tmp_path_factory) -> Path:
    """A private deploycc cache for the whole session (also where TVM tuning databases go)."""
    root = tmp_path_factory.mktemp("deploycc-cache")
    old = os.environ.get("DEPLOYCC_CACHE")
    os.environ["DEPLOYCC_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("DEPLOYCC_CACHE", None)
    else:
        os.environ["DEPLOYCC_CACHE"] = old


@pytest.fixture(scope="session")
def fbnet_lut(lut_cache, tmp_path_factory) -> Path:
    """A real LUT: FBNet space (four candidate units) at 1x3x32x32 on cpu-ort, one thread, statistic min."""
    from deploycc.lut.profile import ProfileSettings, build_lut

    out = tmp_path_factory.mktemp("lut") / "fbnet.cpu-ort.lut.json"
    build_lut(
        "fbnet",
        out,
        ProfileSettings(target="cpu-ort", threads=1, protocol=FAST),
        SHAPE,
        statistic="min",
        cache=lut_cache / "lut",
        units=UNITS,
    )
    return out


@pytest.fixture(scope="session")
def space_arch(fbnet_lut, tmp_path_factory) -> Path:
    """An architecture file of the session LUT's (reduced) space at its input shape."""
    from deploycc.lut import load_lut
    from deploycc.lut.measure_arch import sample_genotypes
    from deploycc.models import parse_arch, save_arch

    geno = sample_genotypes(load_lut(fbnet_lut), 1, 0)[0]
    arch = parse_arch(
        {
            "format": "deploycc-arch",
            "version": 1,
            "name": "pick",
            "space": "fbnet",
            "genotype": geno,
            "input_shape": list(SHAPE),
        }
    )
    return save_arch(arch, tmp_path_factory.mktemp("arch") / "pick.json")


@pytest.fixture
def lut_copy(fbnet_lut, tmp_path) -> Path:
    path = tmp_path / "copy.lut.json"
    shutil.copy(fbnet_lut, path)
    return path


@pytest.fixture(scope="session")
def make_lut():
    """``make_lut(fn, space, shape)``: a synthetic LUT (see :func:`synthetic_lut`)."""
    return synthetic_lut


def synthetic_lut(fn, space: str = "fbnet", shape=SHAPE):
    """A LUT of ``space`` whose entry latency is ``fn(spec)`` ms (no profiling)."""
    from deploycc.lut.entries import template_arch
    from deploycc.lut.profile import plan, unique_specs
    from deploycc.lut.table import LUT, layer_row
    from deploycc.models import searchable_layers

    arch = template_arch(space, shape)
    stem, head, layers = plan(arch)
    entries = {}
    for spec in unique_specs(stem, head, layers):
        ms = 0.0 if spec.identity else float(fn(spec))
        entries[spec.key] = {
            **spec.to_dict(),
            "measured": not spec.identity,
            "latency": {} if spec.identity else {"median_ms": ms, "min_ms": ms},
        }
    rows = [layer_row(li, {c: s.key for c, s in cands.items()}) for li, cands in zip(searchable_layers(arch), layers)]
    return LUT(
        space=space,
        backbone=arch.backbone,
        head=arch.head,
        num_classes=arch.num_classes,
        input_shape=tuple(arch.input_shape),
        target={"name": "cpu-ort", "backend": "ort", "sha256": "x"},
        toolchain={"onnxruntime": "0"},
        threads=1,
        statistic="median",
        protocol={},
        stem=stem.key,
        head_entry=head.key,
        layers=rows,
        entries=entries,
    )
