"""The device side of a lease, run in a child process: TVM RPC session, upload, load, run, time.

Why a child process: TVM's Python objects for remote handles free themselves with a synchronous
RPC call made while Python's GIL is held. When a device hangs (stopped, unplugged mid-transfer)
at the moment such a handle is freed, the whole process freezes, and no watchdog thread in it can
run again. So every TVM RPC object lives in one child process per lease
(:class:`deploycc.fleet.worker.DeviceProcess`); the parent only exchanges NumPy arrays and
figures with it over a pipe, each exchange with a bound, and kills the child when the bound
passes. The device's sockets close with the child, and the server frees its session.

In the child: the artifact's ``model.so`` (checked against its sha256 before it leaves this
machine) is uploaded with ``session.upload`` (once per session), loaded with
``session.load_module`` and run in ``relax.VirtualMachine(module, device)``. Timing uses the VM's
stateful API (``set_input`` + ``time_evaluator("invoke_stateful")``, the form TVM documents as
working over RPC for any output arity) and feeds the per-run times the device measured into the
common protocol (:func:`deploycc.verify.measure.time_batched`).
"""

from __future__ import annotations

from pathlib import Path

import tvm
from tvm import relax

from deploycc.core.errors import first_line
from deploycc.targets.tvm.rule_search import device_facts
from deploycc.verify.measure import Protocol, time_batched


class DeviceSession:
    """An artifact loaded on the leased device (child side)."""

    def __init__(self, lease, artifact: Path, manifest: dict, threads: int):

        sess = lease.session
        # Content-addressed name: the same library is uploaded and loaded once per session
        # (uploading over a library the server has loaded would rewrite a mapped file).
        name = f"deploycc-{manifest['files']['model.so'][:16]}.so"
        if name not in lease.modules:
            sess.upload(str(Path(artifact) / "model.so"), name)
            lease.modules[name] = sess.load_module(name)
        cuda = "cuda" in manifest.get("backend_info", {}).get("target", "")
        self._dev = sess.cuda() if cuda else sess.cpu()
        if threads:
            sess.get_function("runtime.config_threadpool")(1, int(threads))
        self._vm = relax.VirtualMachine(lease.modules[name], self._dev)
        self.threads = int(threads)
        self.facts = device_facts(sess)

    def _set_inputs(self, arrays: list) -> None:

        self._vm.set_input("main", *[tvm.runtime.tensor(a, self._dev) for a in arrays])

    def run(self, arrays: list) -> list:
        self._set_inputs(arrays)
        self._vm.invoke_stateful("main")
        out = self._vm.get_outputs("main")
        items = [out] if hasattr(out, "numpy") else list(out)
        return [o.numpy() for o in items]

    def time(self, arrays: list, protocol: Protocol) -> dict:
        self._set_inputs(arrays)

        def batch(n: int) -> list[float]:
            evaluator = self._vm.time_evaluator("invoke_stateful", self._dev, number=1, repeat=n)
            return [1e3 * s for s in evaluator("main").results]

        return time_batched(batch, protocol, self.threads).to_dict()


def ping(lease) -> bool:
    """A trivial call that must cross the connection (``Device.exist`` is answered locally)."""

    tvm.runtime.empty((1,), "float32", lease.session.cpu())
    return True


def serve(conn) -> None:
    """The child's loop: one request, one reply (``("ok", value)`` or ``("error", (kind, text))``)."""
    from .tracker import Tracker

    state: dict = {"sessions": {}}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        op, args = message[0], message[1:]
        if op == "close":
            conn.send(("ok", None))
            return
        try:
            if op == "lease":
                address, key, timeout, session_timeout = args
                state["lease"] = Tracker(address, timeout=timeout).lease(key, timeout, session_timeout)
                value = state["lease"].address
            elif op == "load":
                artifact, manifest, threads = args
                state["sessions"][artifact] = DeviceSession(state["lease"], Path(artifact), manifest, threads)
                value = state["sessions"][artifact].facts
            elif op == "run":
                artifact, arrays = args
                value = state["sessions"][artifact].run(arrays)
            elif op == "time":
                artifact, arrays, protocol = args
                value = state["sessions"][artifact].time(arrays, protocol)
            elif op == "ping":
                value = ping(state["lease"])
            else:
                raise ValueError(f"unknown request {op!r}")
        except Exception as exc:  # reported to the parent as one line; the child stays usable
            conn.send(
                (
                    "error",
                    (
                        type(exc).__name__,
                        str(exc) if type(exc).__module__.startswith("deploycc") else first_line(exc, with_type=True),
                    ),
                )
            )
            continue
        conn.send(("ok", value))
