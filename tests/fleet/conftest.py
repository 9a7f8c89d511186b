"""Fixtures for the remote tests: a real loopback fleet of TVM RPC processes on 127.0.0.1.

``python -m tvm.exec.rpc_tracker`` and ``python -m tvm.exec.rpc_server``s, started as subprocesses.
Each process starts in its own session (process group), so a test can drop a "device" the way a
device drops (the server and the session process it forked die together) and teardown kills
exactly the groups it started. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HOST = "127.0.0.1"
START_TIMEOUT = 120.0  # TVM's import alone takes seconds on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class LoopbackFleet:
    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self.procs: dict[str, subprocess.Popen] = {}
        self.tracker_port = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.tracker_port}"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_tracker(self) -> None:
        self.tracker_port = free_port()
        self._spawn(
            "tracker",
            [
                "tvm.exec.rpc_tracker",
                "--host",
                HOST,
                "--port",
                str(self.tracker_port),
                "--port-end",
                str(self.tracker_port + 1),
                "--silent",
            ],
        )
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            try:
                socket.create_connection((HOST, self.tracker_port), 0.5).close()
                return
            except OSError:
                self._check_alive("tracker")
                time.sleep(0.2)
        raise TimeoutError(f"RPC tracker did not listen on {self.address} within {START_TIMEOUT} s")

    def start_server(self, key: str) -> str:
        """Start one rpc_server registered under ``key``; returns its address HOST:PORT."""
        port = free_port()
        self._spawn(
            f"server-{port}",
            [
                "tvm.exec.rpc_server",
                "--tracker",
                self.address,
                "--key",
                key,
                "--host",
                HOST,
                "--port",
                str(port),
                "--port-end",
                str(port + 1),
                "--silent",
            ],
        )
        return f"{HOST}:{port}"

    def wait_free(self, key: str, count: int) -> None:
        from deploycc.fleet import Tracker

        tracker = Tracker(self.address, timeout=5)
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            if tracker.devices(key)[1] >= count:
                return
            for name in self.procs:
                self._check_alive(name)
            time.sleep(0.3)
        raise TimeoutError(f"{count} server(s) with key {key} did not register within {START_TIMEOUT} s")

    def kill(self, address: str, sig=signal.SIGKILL) -> None:
        """Drop the device at ``address`` (its server and the session process it forked)."""
        proc = self.procs[f"server-{address.rpartition(':')[2]}"]
        os.killpg(proc.pid, sig)

    def _check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if name == "tracker" and proc.poll() is not None:
            log = (self.logdir / f"{name}.log").read_text()[-2000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}: {log}")

    def stop(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A tracker and two rpc_servers with key "cpu" on 127.0.0.1, killed at teardown."""
    f = LoopbackFleet(tmp_path_factory.mktemp("fleet-logs"))
    try:
        f.start_tracker()
        f.servers = [f.start_server("cpu"), f.start_server("cpu")]
        f.wait_free("cpu", 2)
        yield f
    finally:
        f.stop()


@pytest.fixture(scope="module")
def tracker_only(tmp_path_factory):
    """A LoopbackFleet with its tracker running and no server yet (each process killed at teardown)."""
    f = LoopbackFleet(tmp_path_factory.mktemp("tracker-logs"))
    try:
        f.start_tracker()
        yield f
    finally:
        f.stop()


@pytest.fixture
def extra_servers(fleet):
    """``extra_servers(key, n)``: n more rpc_servers on the module's tracker, killed after the test."""
    started = []

    def start(key: str, n: int = 2) -> list[str]:
        addresses = [fleet.start_server(key) for _ in range(n)]
        started.extend(addresses)
        fleet.wait_free(key, n)
        return addresses

    yield start
    for address in started:
        try:
            fleet.kill(address)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The Conv-BN-ReLU golden model built for cpu (TVM) and cpu-ort (ONNX Runtime)."""
    import onnx
    from helpers import CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, make_model

    from deploycc.pipeline.pipeline import build

    folder = tmp_path_factory.mktemp("remote-artifacts")
    model = folder / "tiny.onnx"
    onnx.save(make_model(CONV_BN_RELU, CONV_BN_RELU_WEIGHTS, positive=("v",)), model)
    build(str(model), "cpu", folder / "tiny.cpu")
    build(str(model), "cpu-ort", folder / "tiny.cpu-ort")
    return {"onnx": model, "cpu": folder / "tiny.cpu", "cpu-ort": folder / "tiny.cpu-ort"}
