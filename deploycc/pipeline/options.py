"""Every build option checked before anything is read or written: its range, and whether it
applies to the target at all. An option that does not apply is an error naming the option and
the target (never accepted and ignored); a value out of range is an error naming the option.
"""

from __future__ import annotations

import math
from pathlib import Path

from deploycc.core.errors import UserError
from deploycc.quantize.qdq import METHODS as CALIB_METHODS
from deploycc.targets import Target

MAX_CALIB_IMAGES = 100_000


def check_build_options(options, target: Target) -> None:
    """Refuse (UserError, one line) any option of ``options`` (a BuildOptions) that is out of range
    or does not apply to ``target`` (as resolved, after ``--backend``)."""
    _counts(options)
    _int8_only(options, target)
    _tvm_only(options, target)
    _tune_here(options, target)
    if options.calib_data is not None and not Path(options.calib_data).is_dir():
        raise UserError(f"--calib-data {options.calib_data}: no such folder")
    if options.weights is not None and not Path(options.weights).is_file():
        raise UserError(f"--weights {options.weights}: no such file")
    from deploycc.passes import check_pass_options  # onnx_ir: not paid by `deploycc --help`

    check_pass_options(options.extra)


def _counts(options) -> None:
    _int_at_least("--threads", options.threads, 0)
    _int_at_least("--seed", options.seed, 0)
    _int_at_least("--tune-trials", options.tune_trials, 0)
    if options.trials_per_task is not None:
        _int_at_least("--trials-per-task", options.trials_per_task, 1)
    if options.calib_images is not None:
        _int_at_least("--calib-images", options.calib_images, 1)
        if options.calib_images > MAX_CALIB_IMAGES:
            raise UserError(f"--calib-images {options.calib_images}: at most {MAX_CALIB_IMAGES}")
    if options.calib_method is not None and options.calib_method not in CALIB_METHODS:
        raise UserError(f"--calib-method {options.calib_method!r}: choose one of {', '.join(CALIB_METHODS)}")
    drop = options.max_miou_drop
    if drop is not None and (
        isinstance(drop, bool) or not isinstance(drop, (int, float)) or not math.isfinite(drop) or not 0 <= drop <= 100
    ):
        raise UserError(f"--max-miou-drop {drop}: must be a number of mIoU points in [0, 100]")


def _int8_only(options, target: Target) -> None:
    if target.precision != "int8":
        _refuse_given(
            (
                ("--calib-data", options.calib_data),
                ("--calib-method", options.calib_method),
                ("--calib-images", options.calib_images),
                ("--max-miou-drop", options.max_miou_drop),
            ),
            f"does not apply to target {target.name} (precision {target.precision}): "
            "calibration options are for INT8 targets",
        )


def _tvm_only(options, target: Target) -> None:
    if target.backend != "tvm":
        _refuse_given(
            (
                ("--tune-trials", options.tune_trials or None),
                ("--trials-per-task", options.trials_per_task),
                ("--tuning-db", options.tuning_db),
                ("--remote", options.tune_remote),
            ),
            f"does not apply to target {target.name} (backend {target.backend}): tuning options are for TVM targets",
        )


def _refuse_given(options: tuple, why: str) -> None:
    """One line naming the first of the (name, value) ``options`` the user gave, and ``why``."""
    given = [name for name, value in options if value is not None]
    if given:
        raise UserError(f"{given[0]} {why}")


def _tune_here(options, target: Target) -> None:
    from deploycc.targets.tvm.backend import runs_elsewhere

    if (options.tune_remote or options.tune_key) and not options.tune_trials:
        raise UserError(
            "--remote/--key on a build say where tuning measures, so they apply only with --tune-trials "
            "(to run or time an artifact on a device: deploycc verify/bench --remote)"
        )
    if options.tune_trials and target.backend == "tvm" and runs_elsewhere(target) and not options.tune_remote:
        raise UserError(
            f"--tune-trials: target {target.name} runs on another kind of machine, and tuning here "
            "measures candidates on this one; measure them on the device with --remote HOST:PORT "
            "--key KEY (the build without --tune-trials uses the default schedules)"
        )


def _int_at_least(option: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{option} {value}: must be an integer >= {minimum}")
