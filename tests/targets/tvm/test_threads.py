"""TVM's thread pool gets one thread per physical core (as ONNX Runtime's does), not TVM's own
x86 default of half the logical CPUs; a count the user set wins. Checked in a fresh process,
because TVM sizes a pool once, when a thread first runs parallel code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from deploycc.targets.tvm import threads as tvm_threads

pytest.importorskip("tvm")

PROBE = """
import json, sys
from pathlib import Path
from deploycc.pipeline.pipeline import BuildOptions, build
from deploycc.pipeline.runtime import open_artifact
import tvm_ffi
build(sys.argv[1], "cpu", Path(sys.argv[2]), BuildOptions())
manifest, session = open_artifact(sys.argv[2])
session.timed_runner({session.inputs[0].name: __import__("numpy").zeros(session.inputs[0].shape, "float32")})()
print(json.dumps(tvm_ffi.get_global_func("runtime.NumThreads")()))
"""


def _threads_in_fresh_process(model, out, env) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ("TVM_NUM_THREADS", "OMP_NUM_THREADS")} | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(model), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


def test_physical_cores_counts_cores_not_hardware_threads(tmp_path, monkeypatch):
    for cpu, core in ((0, 0), (1, 0), (2, 1), (3, 1)):  # two cores with two hardware threads each
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{core}\n")
    monkeypatch.setattr(tvm_threads, "SYS_CPU", tmp_path)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert tvm_threads.physical_cores() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})  # cpu4 has no topology files
    assert tvm_threads.physical_cores() == 5


def test_a_user_setting_wins_and_none_gets_the_physical_cores(monkeypatch):
    monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert tvm_threads.size_thread_pool() == "3" and "TVM_NUM_THREADS" not in os.environ
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert tvm_threads.size_thread_pool() == str(tvm_threads.physical_cores()) == os.environ["TVM_NUM_THREADS"]


def test_a_loaded_artifact_runs_on_every_physical_core_unless_told_otherwise(tiny_onnx, tmp_path):
    assert _threads_in_fresh_process(tiny_onnx, tmp_path / "a", {}) == tvm_threads.physical_cores()
    assert _threads_in_fresh_process(tiny_onnx, tmp_path / "b", {"TVM_NUM_THREADS": "1"}) == 1
