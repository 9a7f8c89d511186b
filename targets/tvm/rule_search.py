"""Measuring the CPU rules' design space with MetaSchedule, without MetaSchedule's start-up costs.

Tuning the rule space of a zoo net (47 tasks, 411 candidates for mac_small) spent almost all of
its time starting, not building or measuring. Measured on this 2-core machine:

- ``import tvm.s_tir.tensor_intrin`` takes 61-79 s: it parses the TVMScript of every CUDA MMA
  intrinsic. ``TuneContext`` imports it in the tuning process, and MetaSchedule's
  ``LocalBuilder`` imports it again in every worker of the fresh process pool it starts for each
  batch, so each task's batch paid it once more.
- The build of one candidate in-process takes about 0.1 s.

So this module gives MetaSchedule three parts of its own:

- :func:`without_tensor_intrinsics` lets the tuning contexts be made without that import. The rule
  space tensorizes nothing, so no intrinsic is needed. A real import made earlier is left alone,
  and the stand-in is removed afterwards, so a later import anywhere gets the real module.
- :class:`InProcessBuilder` builds each candidate in this process the way MetaSchedule's
  ``default_build`` does, and exports it to a tar for the runner. Every candidate of the rule
  space is valid by construction, so the crash isolation a worker process would give is not
  needed. A candidate that fails to build still gets its error as a result.
- :class:`EveryCandidate` is a search strategy that measures each design space once, in order,
  the default schedule first. MetaSchedule's evolutionary search samples populations of hundreds
  of traces and trains a cost model to pick among at most 16 schedules with no random decisions.
  That is work without a purpose here.

Hand-written because MetaSchedule offers no in-process builder or exhaustive strategy; all three
plug into its public Python extension points (``PyBuilder``, ``PySearchStrategy``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import types

from deploycc.core.children import interrupted
from deploycc.core.errors import UserError

INTRINSICS = "tvm.s_tir.tensor_intrin"


@contextlib.contextmanager
def without_tensor_intrinsics():
    """Within the block, ``import tvm.s_tir.tensor_intrin`` registers nothing and takes no time."""
    if INTRINSICS in sys.modules:
        yield
        return
    sys.modules[INTRINSICS] = types.ModuleType(INTRINSICS, "stand-in: the CPU rule space tensorizes nothing")
    try:
        yield
    finally:
        sys.modules.pop(INTRINSICS, None)


def builder(remote: bool = False, cc: str | None = None):
    """An :class:`InProcessBuilder` (made here so that TVM is imported only when tuning). For a
    ``remote`` device each candidate is linked into a shared library (with ``cc``, the target's
    cross compiler, when given), which the RPC runner uploads and loads there; otherwise a tar for
    MetaSchedule's local runner."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder

    @derived_object
    class InProcessBuilder(PyBuilder):
        def build(self, build_inputs):
            if interrupted():  # the tuner goes on after an interrupt: build nothing more (tuning.py stops it)
                return [BuilderResult(None, "deploycc: interrupted") for _ in build_inputs]
            return [_build_one(b, BuilderResult, remote, cc) for b in build_inputs]

    return InProcessBuilder()


def _build_one(build_input, result_type, remote: bool, cc: str | None):
    from tvm import tirx
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock

    try:
        mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(build_input.mod)
        rt_mod = tirx.build(mod, target=build_input.target)
        folder = tempfile.mkdtemp(prefix="deploycc-candidate-")
        if remote:
            from tvm.support import cc as tvm_cc

            path = os.path.join(folder, "candidate.so")
            rt_mod.export_library(path, **({"fcompile": tvm_cc.cross_compiler(cc)} if cc else {}))
        else:
            from tvm.support.tar import tar

            path = os.path.join(folder, "candidate." + tar.output_format)
            rt_mod.export_library(path, fcompile=tar)
        return result_type(path, None)
    except Exception as exc:
        return result_type(None, f"deploycc in-process builder: {type(exc).__name__}: {exc}")


def device_runner(address: str, key: str, evaluator_args: dict, timeout_s: float):
    """(MetaSchedule RPC runner measuring on the devices registered under ``key`` at the tracker
    ``address``, what the device says it is). One clear error when the tracker cannot be reached
    or has no device under ``key``, instead of MetaSchedule waiting for one."""
    import socket

    from tvm import rpc
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig, RPCConfig, RPCRunner

    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()  # TVM's own connect retries for 60 s
        tracker = rpc.connect_tracker(host, int(port))
        devices = _devices_under(tracker.summary(), key)
    except Exception as exc:
        raise UserError(f"--remote {address}: cannot reach a TVM RPC tracker there ({exc})") from None
    if devices < 1:
        raise UserError(f"--key {key}: no device is registered under this key at the RPC tracker {address}")
    session = tracker.request(key, session_timeout=60)
    facts = device_facts(session)
    del session  # hands the device back to the tracker for the runner
    config = RPCConfig(tracker_host=host, tracker_port=int(port), tracker_key=key, session_timeout_sec=int(timeout_s))
    runner = RPCRunner(
        rpc_config=config,
        evaluator_config=EvaluatorConfig(**evaluator_args),
        max_workers=devices,
        f_alloc_argument=alloc_on_device,
    )
    return runner, facts


def alloc_on_device(session, device, args_info, alloc_repeat):
    """MetaSchedule's RPC argument allocation, with random data sent from here when the device's
    TVM lacks ``tvm.contrib.random`` (the aarch64 wheel on the emulated device does); runs in the
    RPC runner's worker processes."""
    import numpy as np
    from tvm.s_tir.meta_schedule.runner.utils import alloc_argument_common

    try:
        fill = session.get_function("tvm.contrib.random.random_fill_for_measure")
    except AttributeError:
        rng = np.random.default_rng(0)

        def fill(tensor):
            tensor.copyfrom(rng.uniform(-1, 1, [int(d) for d in tensor.shape]).astype(str(tensor.dtype)))

    return alloc_argument_common(fill, device, args_info, alloc_repeat)


def _devices_under(summary: dict, key: str) -> int:
    """Servers registered under ``key`` (busy or free) in a tracker's summary."""
    return sum(1 for server in summary.get("server_info", []) if server.get("key") == f"server:{key}")


def device_facts(session) -> dict:
    """What the device behind an RPC ``session`` says it is (``deploycc/fleet/rpc_device_server.py``
    registers ``deploycc.device_facts``: machine, TVM, and the emulator it runs under, if any); a
    plain ``tvm.exec.rpc_server`` says nothing, and then nothing is claimed. Used by tuning here
    and by the fleet's remote sessions."""
    import json

    try:
        return json.loads(session.get_function("deploycc.device_facts")())
    except Exception:
        return {"emulated": None, "reported": False}


def search_strategy():
    """An :class:`EveryCandidate` strategy."""
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.search_strategy import (
        MeasureCandidate,
        PySearchStrategy,
    )

    @derived_object
    class EveryCandidate(PySearchStrategy):
        def _initialize_with_tune_context(self, context) -> None:
            self.pending: list = []

        def pre_tuning(self, max_trials, num_trials_per_iter, design_spaces, database=None, cost_model=None):
            self.pending = list(design_spaces)[:max_trials]
            self.per_iter = max(1, num_trials_per_iter)

        def post_tuning(self) -> None:
            self.pending = []

        def generate_measure_candidates(self):
            if not self.pending:
                return None
            batch, self.pending = self.pending[: self.per_iter], self.pending[self.per_iter :]
            return [MeasureCandidate(s, ArgInfo.from_entry_func(s.mod, remove_preproc=True)) for s in batch]

        def notify_runner_results(self, measure_candidates, results) -> None:
            pass

        def clone(self):
            return search_strategy()

    return EveryCandidate()
