"""Contenders in worker processes (verify/workers.py) and the peer runtimes they open (verify/peers.py):
real ONNX Runtime, OpenVINO (where installed) and a cpu-ort artifact on a tiny conv net."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model

from deploycc.verify import peers
from deploycc.verify.measure import Protocol
from deploycc.verify.workers import Worker, time_workers

SHAPE = [1, 3, 16, 16]


@pytest.fixture
def conv_onnx(tmp_path):
    path = tmp_path / "conv.onnx"
    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",)), str(path))
    return path


def test_openvino_agrees_with_onnxruntime(conv_onnx):
    pytest.importorskip("openvino", reason="openvino not installed (make setup installs requirements-bench.txt)")
    spec = {"model": str(conv_onnx), "shape": SHAPE, "threads": 1}
    ort_out = peers.open_runner({**spec, "kind": "onnxruntime"})()[0]
    ov_out = peers.open_runner({**spec, "kind": "openvino"})()[0]
    assert ort_out.shape == (1, 8, 16, 16)
    np.testing.assert_allclose(ov_out, ort_out, rtol=1e-4, atol=1e-4)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="contender kind"):
        peers.open_runner({"kind": "tflite"})


def test_workers_time_interleaved_rounds_and_report_their_own_peak_memory(conv_onnx, tmp_path):
    from deploycc.pipeline.pipeline import BuildOptions, build

    artifact = tmp_path / "conv.cpu-ort"
    build(str(conv_onnx), "cpu-ort", artifact, BuildOptions(threads=1))
    specs = [
        {"kind": "onnxruntime", "model": str(conv_onnx)},
        {"kind": "artifact", "path": str(artifact)},
    ]
    workers = [Worker({**s, "shape": SHAPE, "threads": 1}) for s in specs]
    try:
        assert [w.not_run for w in workers] == [None, None]
        protocol = Protocol(warmup=1, min_repeats=2, max_repeats=6, rounds=3, reject_mad=3.0)
        latencies = time_workers(workers, protocol, threads=1)
    finally:
        closed = [w.close() for w in workers]
    for latency in latencies:
        assert latency.rounds == 3 and latency.runs >= 2 * 3 - 2 * latency.rejected
        assert 0 < latency.min_ms <= latency.median_ms
    for info in closed:  # the runtime and its model cost memory beyond the bare worker
        assert info["peak_rss_mb"] > info["rss_before_open_mb"] > 0


def test_a_runtime_that_is_absent_is_not_run_with_its_reason(conv_onnx, monkeypatch, tmp_path):
    # a real worker whose interpreter cannot import openvino: an empty package of that name shadows it
    fake = tmp_path / "site" / "openvino"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no runtime here', name='openvino')\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    worker = Worker({"kind": "openvino", "model": str(conv_onnx), "shape": SHAPE, "threads": 1})
    assert worker.not_run is not None and "openvino not installed" in worker.not_run
    assert worker.close() == {}
