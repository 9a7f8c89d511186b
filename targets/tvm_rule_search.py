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


def builder():
    """An :class:`InProcessBuilder` (made here so that TVM is imported only when tuning)."""
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.ir.utils import derived_object

    @derived_object
    class InProcessBuilder(PyBuilder):
        def build(self, build_inputs):
            return [_build_one(b, BuilderResult) for b in build_inputs]

    return InProcessBuilder()


def _build_one(build_input, result_type):
    from tvm import tirx
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock
    from tvm.support.tar import tar
    try:
        mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(build_input.mod)
        rt_mod = tirx.build(mod, target=build_input.target)
        path = os.path.join(tempfile.mkdtemp(prefix="deploycc-candidate-"), "tvm_tmp_mod." + tar.output_format)
        rt_mod.export_library(path, fcompile=tar)
        return result_type(path, None)
    except Exception as exc:  # noqa: BLE001 - one candidate's failure is that candidate's result
        return result_type(None, f"deploycc in-process builder: {type(exc).__name__}: {exc}")


def search_strategy():
    """An :class:`EveryCandidate` strategy."""
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo
    from tvm.s_tir.meta_schedule.search_strategy import MeasureCandidate, PySearchStrategy
    from tvm.ir.utils import derived_object

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
            batch, self.pending = self.pending[:self.per_iter], self.pending[self.per_iter:]
            return [MeasureCandidate(s, ArgInfo.from_entry_func(s.mod, remove_preproc=True)) for s in batch]

        def notify_runner_results(self, measure_candidates, results) -> None:
            pass

        def clone(self):
            return search_strategy()

    return EveryCandidate()
