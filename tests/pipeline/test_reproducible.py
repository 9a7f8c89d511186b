"""Byte-identical artifacts: two builds of one model for one target give the same bytes, for every
kind of target that builds here (TVM, ONNX Runtime FP32 and INT8, a TensorRT bundle, NNAPI), to
the same path (a device bundle records its own path in the command left for the device).
The second build finds the calibration ranges in the cache: what differs between the runs (cache
hits, seconds) is in the build log, not in the artifact."""

from __future__ import annotations

import shutil

import pytest

from deploycc.core.errors import Unavailable
from deploycc.pipeline.pipeline import build


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["cpu", "cpu-ort", "cpu-int8", "xavier-int8", "kirin970-npu"])
def test_two_builds_give_the_same_bytes(tmp_path, tiny_onnx, target, monkeypatch):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "art"  # one path: a device bundle's manifest names it in its remaining command
    try:
        first = build(str(tiny_onnx), target, out)
    except Unavailable as exc:
        pytest.skip(f"{target} does not build here: {exc}")
    before = _files(out)
    second = build(str(tiny_onnx), target, out)
    assert _files(out) == before
    if target.endswith("int8"):
        assert first.log["quantization"]["ranges_cache_hit"] is False
        assert second.log["quantization"]["ranges_cache_hit"] is True
        assert "cache_hit" not in first.manifest["quantization"]


@pytest.mark.parametrize("target", ["cpu", "cpu-ort", "cpu-int8"])
def test_two_machines_give_the_same_bytes(tmp_path, tiny_onnx, target, monkeypatch):
    """Another cache location and another checkout (the target file at another path): the same
    artifact, byte for byte; no path of the build machine is recorded."""
    from deploycc.targets.target import TARGET_DIR

    outs = []
    for machine in ("a", "b"):
        checkout = tmp_path / machine / "checkout" / "targets"
        checkout.mkdir(parents=True)
        toml = checkout / f"{target}.toml"
        toml.write_bytes((TARGET_DIR / f"{target}.toml").read_bytes())
        monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / machine / "cache"))
        out = tmp_path / "art"  # one path: the comparison is of the machines, not of the outputs
        build(str(tiny_onnx), str(toml), out)
        outs.append(_files(out))
        assert str(tmp_path) not in (out / "manifest.json").read_text()
        shutil.rmtree(out)
    assert outs[0] == outs[1]
