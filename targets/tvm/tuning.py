"""The MetaSchedule tuning database a TVM build reads: checked before TVM sees it.

MetaSchedule's ``JSONDatabase`` is two line-per-entry files (``database_workload.json``:
``[structural hash, module]``; ``database_tuning_record.json``: ``[workload index, record]``).
A build killed mid-write leaves a truncated line, and TVM then fails the whole build with a C++
traceback. Here every line is parsed first and every record's workload index checked; a
database that fails is moved aside (``*.corrupt``, kept for inspection), reported in one line,
and the build goes on with the default schedules (a later ``--tune-trials`` starts it afresh).
Every database deploycc writes (tuned here, seeded from the shipped one, or the shipped one
unpacked into the cache) is sealed like the other caches: ``deploycc.seal.json`` holds the sha256
of both files (``deploycc.core.cache.seal``). A database is used only when its seal holds and both
files are regular files (a link or a special file is never read through); an edited, truncated
or unsealed one (made outside deploycc, or by a run killed mid-tune) is set aside with one line.
The unpacked shipped copy that fails its seal is unpacked again. Hand-written because TVM offers
no verifying reader.

``tune_and_apply`` is TVM's ``static_shape_tuning`` pipeline for CPU with three changes:

- It searches the design space of deploycc's own CPU rules (``WindowReduction.design_space``,
  and ``BlockedWindow.design_space`` for the kernels of the blocked layout: the default schedule
  with each register tile that fits), not MetaSchedule's generic space.
  The generic space needs thousands of trials per task on this machine and left tasks with no
  valid candidate at all; the rule space has at most 16 schedules per task, every one valid by
  construction and the default among them. With ``TRIALS_PER_TASK`` (the default
  ``--trials-per-task``) every candidate is measured, so no task ends slower than untuned, up
  to the timing noise; with fewer, the first ones in order (the default first). Only the
  convolutions and pooling (the tasks the rule matches) are tuned; every other kernel keeps its
  default rule.
- It builds candidates in this process, measures each design space once in order, and makes
  its tuning contexts without TVM's tensor intrinsics (``tvm_rule_search``). MetaSchedule's
  own builder started a fresh pool of processes for every batch, each importing those
  intrinsics for 61-79 s here; the whole rule space of mac_small (47 tasks, 411 candidates)
  now tunes in about 3 minutes. The runner is MetaSchedule's ``LocalRunner`` (one worker
  process, kept), waiting ``MEASURE_TIMEOUT_S`` rather than 30 s, because this shared machine
  can stall a measurement for longer.
- It legalizes with deploycc's CPU legalization (the separable resize), so tuned and untuned
  builds compute the same kernels.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from deploycc.core.cache import atomic_write_text, cache_home, not_data, remove_entry, seal, sha256_file, unseal
from deploycc.core.children import raise_if_interrupted

WORKLOADS, RECORDS = "database_workload.json", "database_tuning_record.json"
SEAL, SEAL_KIND = "deploycc.seal.json", "tvm-tuning"
SHIPPED = Path(__file__).parent / "shipped_tuning"  # <target key>/: databases tools/tune_zoo.py --ship wrote
MEASURE_TIMEOUT_S = 600.0
# Three means of >= 30 ms each, not MetaSchedule's one of >= 100 ms: this VM's speed drifts within
# a second, and the database keeps the mean, so one unlucky stretch cannot pick a tile alone.
EVALUATOR_ARGS = {"number": 3, "repeat": 3, "min_repeat_ms": 30}
TRIALS_PER_TASK = 16  # no rule design space is larger: WindowReduction.tilings 4 x 4, BlockedWindow.tilings 3 x 5


def tune_and_apply(
    mod, tvm_target, facts, work_dir: Path, trials: int, trials_per_task: int | None, device: dict | None = None
):
    """Tune ``mod``'s kernels into the database at ``work_dir`` (``trials`` > 0), then apply it;
    returns (module, what was tuned: {"tasks", "measured_on"}, or None without tuning). Kernels
    without a record stay unscheduled here and get the default schedules later. ``device``
    ({"remote": HOST:PORT, "key", "cc"}) measures the candidates on the fleet's devices."""
    import tvm
    from tvm import relax

    from .cpu_schedules import legalize_passes

    with tvm_target:
        mod = tvm.transform.Sequential(
            [
                relax.transform.DecomposeOpsForInference(),
                relax.transform.CanonicalizeBindings(),
                *legalize_passes(tvm_target),
            ]
        )(mod)
        tuned = (
            tune_rule_space(mod, tvm_target, facts, work_dir, trials, trials_per_task, device) if trials > 0 else None
        )
        if tuned is not None:
            seal_database(work_dir)
        return relax.transform.MetaScheduleApplyDatabase(str(work_dir))(mod), tuned


def tune_rule_space(
    mod, tvm_target, facts, work_dir: Path, trials: int, trials_per_task: int | None, device: dict | None = None
) -> dict:
    """Measure the rule design space of every convolution/pooling kernel of ``mod`` (at most
    ``trials`` candidates in all, ``trials_per_task`` each) into the database, on this machine
    or on ``device``; returns {"tasks": number of tasks, "candidates": schedules in their rule space, "measured_on":
    where}."""
    from tvm import s_tir
    from tvm.s_tir import meta_schedule as ms

    from . import rule_search

    design_space = rule_design_space(facts)
    sized = [
        (t, len(design_space(s_tir.Schedule(t.dispatched[0]))))
        for t in ms.relax_integration.extract_tasks(mod, tvm_target)
    ]
    tasks = [t for t, size in sized if size]
    candidates = sum(size for _, size in sized)  # the rule space's size on this CPU (its vector width)
    measured_on: dict | str
    if device:
        runner, reported = rule_search.device_runner(device["remote"], device["key"], EVALUATOR_ARGS, MEASURE_TIMEOUT_S)
        measured_on = {"remote": device["remote"], "key": device["key"], **reported}
        if reported.get("emulated"):
            measured_on["note"] = (
                f"EMULATED ({reported['emulated']}): the tiles were chosen by emulated speed, "
                "not the device's; retune on a real device"
            )
    else:
        runner = ms.runner.LocalRunner(
            timeout_sec=MEASURE_TIMEOUT_S, evaluator_config=ms.runner.EvaluatorConfig(**EVALUATOR_ARGS)
        )
        measured_on = "this machine"
    if not tasks:
        return {"tasks": 0, "candidates": 0, "measured_on": measured_on}
    space = ms.space_generator.ScheduleFn(design_space, sch_rules=[], postprocs=[], mutator_probs={})
    per_task = trials_per_task or TRIALS_PER_TASK
    _quiet_meta_schedule_console()
    where = f"device {device['key']} at {device['remote']}" if device else "this machine"
    print(
        f"tuning {len(tasks)} tasks, up to {per_task} candidates each, on {where}, into {work_dir} "
        f"(log: {work_dir / 'logs'})",
        file=sys.stderr,
        flush=True,
    )
    with rule_search.without_tensor_intrinsics():
        contexts, weights = ms.relax_integration.extracted_tasks_to_tune_contexts(
            tasks, str(work_dir), space=space, strategy=rule_search.search_strategy()
        )
        with stop_when_interrupted():
            _tune_tasks(ms, contexts, weights, work_dir, trials, per_task, device, runner)
    return {"tasks": len(tasks), "candidates": candidates, "measured_on": measured_on}


def rule_design_space(facts):
    """The design space tuning measures for one kernel: the blocked rule's (``BlockedWindow``,
    kernels of the NCHW[x]c layout) where it applies, else ``WindowReduction``'s; [] for any
    other kernel (it keeps its default rule)."""
    from .blocked_window import BlockedWindow
    from .cpu_schedules import WindowReduction

    rules = (BlockedWindow(facts), WindowReduction(facts))

    def design_space(sch) -> list:
        for rule in rules:
            space = rule.design_space(sch)
            if space:
                return space
        return []

    return design_space


def _tune_tasks(ms, contexts, weights, work_dir: Path, trials: int, per_task: int, device, runner) -> None:
    from . import rule_search

    ms.tune.tune_tasks(
        tasks=contexts,
        task_weights=weights,
        work_dir=str(work_dir),
        max_trials_global=trials,
        max_trials_per_task=per_task,
        num_trials_per_iter=min(per_task, trials),
        builder=rule_search.builder(bool(device), device["cc"] if device else None),
        runner=runner,
        cost_model="random",
    )


@contextlib.contextmanager
def stop_when_interrupted():
    """SIGINT/SIGTERM during tuning stops the command (exit 130): the interrupt lands in one of
    deploycc's builder or runner callbacks, which TVM turns into a failed candidate (the tuning
    went on to the end, exit 0) or an error of its own (exit 4)."""
    try:
        yield
    except Exception:
        raise_if_interrupted()
        raise
    raise_if_interrupted()


def shipped_for(key: str) -> Path | None:
    """The repository's database for target ``key``, or None. It is stored gzipped (a zoo's
    workloads are 15 MB of JSON, 1.1 MB compressed) and unpacked once into the user's cache
    (``<cache>/tvm-tuning/<key>.shipped``), which is what MetaSchedule reads."""
    packed = SHIPPED / key
    if not (packed / (RECORDS + ".gz")).exists():
        return None
    out = cache_home() / "tvm-tuning" / f"{key}.shipped"
    digest = hashlib.sha256(b"".join((packed / (n + ".gz")).read_bytes() for n in (WORKLOADS, RECORDS))).hexdigest()
    if _exists(out):
        why = seal_problem(out, digest)
        if why is None:
            return out
        if os.path.lexists(out / SEAL):  # damaged, not merely from an older source: say so
            print(
                f"note: the unpacked shipped tuning database {out} is damaged ({why}); unpacking it again",
                file=sys.stderr,
            )
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for name in (WORKLOADS, RECORDS):
            (tmp / name).write_bytes(gzip.decompress((packed / (name + ".gz")).read_bytes()))
        seal_database(tmp, digest)
        remove_entry(out)
        tmp.replace(out)  # whole or absent: a build killed mid-unpack leaves only the .tmp folder
    except OSError as exc:  # a read-only or full cache, or another build unpacked it meanwhile
        remove_entry(tmp)
        if _exists(out) and seal_problem(out, digest) is None:
            return out
        print(
            f"note: the shipped tuning database was not applied: cannot unpack it into {out} ({exc})", file=sys.stderr
        )
        return None
    return out


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _quiet_meta_schedule_console() -> None:
    """MetaSchedule's console handler takes its logger's level when tuning starts: WARNING keeps
    the per-task tables (hundreds of lines for a zoo net) in work_dir/logs and off the console.
    The handlers an earlier tuning in this process left are removed first: MetaSchedule hands
    them to ``logging.config`` by name, and under pytest a second tuning met one whose name was
    gone (AttributeError in ``_parameterize_config``); it adds its own again."""
    ms_logger = logging.getLogger("tvm.s_tir.meta_schedule")
    for handler in list(ms_logger.handlers):
        ms_logger.removeHandler(handler)
        handler.close()
    ms_logger.setLevel(logging.WARNING)


def seed_from(shipped: Path, path: Path) -> None:
    """Start the database at ``path`` from the repository's one, so tuning adds to it."""
    path.mkdir(parents=True, exist_ok=True)
    for name in (WORKLOADS, RECORDS):
        shutil.copyfile(shipped / name, path / name)
    seal_database(path)


def seal_database(path: Path, source: str = "") -> None:
    """Record the sha256 of both files of the database at ``path`` (and of the packed ``source``
    it was unpacked from) in its seal."""
    files = {name: sha256_file(path / name) if (path / name).exists() else None for name in (WORKLOADS, RECORDS)}
    atomic_write_text(path / SEAL, seal(SEAL_KIND, "database", {"files": files, "source": source}))


def seal_problem(path: Path, source: str | None = None) -> str | None:
    """Why the database at ``path`` is not one deploycc sealed, intact (None: it is): a link or
    special file, no seal, or a file that no longer matches it (and, with ``source``, unpacked
    from another packed source)."""
    why = _not_data(path)
    if why:
        return why
    if not path.is_dir():
        return "not a folder"
    if not (path / SEAL).is_file():
        return f"no {SEAL}: not written by deploycc, or by a run that was killed while tuning"
    sealed, why = unseal((path / SEAL).read_text(errors="replace"), SEAL_KIND, "database")
    if why:
        return f"{SEAL}: {why}"
    if source is not None and sealed.get("source") != source:
        return "unpacked from another shipped database"
    for name, digest in (sealed.get("files") or {}).items():
        actual = sha256_file(path / name) if (path / name).is_file() else None
        if actual != digest:
            return f"{name} does not match its sha256 in {SEAL} (edited or truncated)"
    return None


def best_only(path: Path, out: Path) -> tuple[int, int]:
    """Write the database at ``path`` to ``out``, gzipped as the repository ships it, with only
    the fastest valid record of each workload (what a build applies); returns (workloads,
    records read)."""
    workloads, records = _lines(path / WORKLOADS), _lines(path / RECORDS)
    best: dict[int, tuple[float, list]] = {}
    for index, record in records:
        secs = [float(s) for s in (record[1] or [])]
        if secs and all(s < 1e9 for s in secs):
            mean = sum(secs) / len(secs)
            if index not in best or mean < best[index][0]:
                best[index] = (mean, record)
    out.mkdir(parents=True, exist_ok=True)
    kept = sorted(best)
    texts = {
        WORKLOADS: "".join(json.dumps(workloads[i]) + "\n" for i in kept),
        RECORDS: "".join(json.dumps([n, best[i][1]]) + "\n" for n, i in enumerate(kept)),
    }
    for name, text in texts.items():
        (out / (name + ".gz")).write_bytes(gzip.compress(text.encode(), mtime=0))  # mtime 0: same bytes each time
    return len(kept), len(records)


def problem(path: Path) -> str | None:
    """Why the database at ``path`` cannot be read (one clause), or None when it looks whole."""
    try:
        workloads = _lines(path / WORKLOADS)
        records = _lines(path / RECORDS)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return str(exc)
    for i, w in enumerate(workloads, 1):
        if not (isinstance(w, list) and len(w) == 2):
            return f"{WORKLOADS} line {i} is not [hash, module]"
    for i, r in enumerate(records, 1):
        if not (isinstance(r, list) and len(r) == 2 and isinstance(r[0], int) and 0 <= r[0] < len(workloads)):
            return f"{RECORDS} line {i} is not [workload index, record] with an index below {len(workloads)}"
    return None


def _not_data(path: Path) -> str | None:
    """A link or special file as the database folder or one of its files (never read through)."""
    for item in (path, path / SEAL, path / WORKLOADS, path / RECORDS):
        try:
            why = not_data(item)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if why:
            return f"{item.name} is {why}"
    return None


def checked(path: Path) -> str | None:
    """Check the database at ``path``; if it is damaged, move it aside and return the one-line
    note (also printed on stderr), else None."""
    why = _not_data(path) or problem(path) or seal_problem(path)
    if why is None:
        return None
    if path.is_symlink() or not path.is_dir():  # set the link itself aside, never what it points to
        path.replace(path.with_name(f"{path.name}.corrupt"))
    else:
        for name in (WORKLOADS, RECORDS, SEAL):
            if os.path.lexists(path / name):
                (path / name).replace(path / f"{name}.corrupt")
    note = (
        f"tuning database {path} is damaged ({why}); ignored and moved to *.corrupt, "
        "this build uses the default schedules"
    )
    print(f"note: {note}", file=sys.stderr)
    return note


def _lines(file: Path) -> list:
    if not file.exists():
        return []
    out = []
    for i, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{file.name} line {i} is not JSON (truncated?)") from None
    return out
