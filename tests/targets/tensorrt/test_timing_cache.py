"""The TensorRT timing cache lives in the user cache, one per (TensorRT version, GPU): builds on one
device reuse it, and another version or GPU never reads it. (The engine build itself needs
TensorRT and a GPU: tests/targets/tensorrt/test_bundle.py covers it where they exist.)"""

from __future__ import annotations

from deploycc.targets.tensorrt.engine import _write_atomic, timing_cache_path


def test_timing_cache_is_keyed_by_version_and_device_in_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path))
    xavier = timing_cache_path("8.5.2.2", "Xavier", "sm_72")
    assert xavier == timing_cache_path("8.5.2.2", "Xavier", "sm_72")  # reused across builds
    assert xavier.parent == tmp_path / "tensorrt-timing"
    others = {
        timing_cache_path("8.6.1", "Xavier", "sm_72"),
        timing_cache_path("8.5.2.2", "Orin", "sm_87"),
        timing_cache_path("8.5.2.2", "Xavier NX", "sm_72"),
    }
    assert xavier not in others and len(others) == 3
    _write_atomic(xavier, b"cache")
    assert xavier.read_bytes() == b"cache" and list(xavier.parent.iterdir()) == [xavier]
