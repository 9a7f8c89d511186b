"""Jobs of the LUT workflow and how they are built: once per network, a group in parallel.

A job (:class:`Job`) is one thing to build on this machine and time: a LUT entry or a sampled
architecture. :func:`build_job` builds one with the full pipeline. :class:`Builder` is how the
local timer builds a group of jobs before timing them together:

- **once per network**: a job with a ``build_key`` (a whole network: its architecture, target,
  toolchain, threads) is built once per builder and its artifact kept while the builder lives,
  since deploycc's builds are reproducible: a validation's anchor and its first sampled network,
  or the noise floor's re-measurements, reuse the build of the same run (0 s recorded);
- **in parallel**: with ``workers > 1`` the group's models are written here and compiled in that
  many processes (spawned, kept for the builder's life). Timing never overlaps a build: the
  timer times a group only after all of its builds have finished, so the figures are those of a
  sequential run, and on a 2-core machine the builds take about half the wall time.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pipeline is imported when a job is built, not with the LUT package
    from concurrent.futures import ProcessPoolExecutor

    from deploycc.pipeline.pipeline import BuildOptions


@dataclass
class Job:
    """One thing to build here and time: an entry of a LUT or a sampled architecture."""

    id: str  # the entry key, or the architecture's index in the sample
    key: str | None  # local cache key; None: nothing to time (``record`` is final)
    record: dict  # the record's fixed part, which the measurement completes
    write: Callable[[Path], Path] | None = None  # writes the model to build into a folder
    target: str = ""  # the target to build for
    options: BuildOptions | None = None
    # what the build depends on: jobs with the same build_key build the same artifact, so a
    # builder builds it once; None: always built (LUT entries: many, small, never repeated)
    build_key: str | None = None


def build_job(job: Job, folder: Path) -> tuple[Path, float]:
    """(artifact folder, build seconds) of ``job`` built in ``folder`` with the full pipeline."""
    return folder / "artifact", build_written(_write(job, folder), job.target, folder / "artifact", job.options)


def _write(job: Job, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    assert job.write is not None, f"job {job.id} has no model to build"
    return job.write(folder)


def build_written(model: Path, target: str, out: Path, options) -> float:
    """Seconds to build the written ``model`` into ``out`` (here, or in a builder's process)."""
    from deploycc.pipeline.pipeline import build

    start = time.perf_counter()
    build(str(model), target, out, options)
    return round(time.perf_counter() - start, 3)


class Builder:
    """Builds groups of jobs: each network once, ``workers`` at a time (see the module doc)."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ValueError(f"build workers must be >= 1, got {workers}")
        self.workers = workers
        self._kept: dict[str, tuple[Path, float]] = {}  # build_key -> (artifact, seconds)
        self._folder: tempfile.TemporaryDirectory | None = None
        self._pool: ProcessPoolExecutor | None = None

    def build_group(self, jobs: list[Job], scratch: Path) -> list[tuple[Path, float]]:
        """(artifact, build seconds) of every job, in order; ``scratch`` holds the builds of jobs
        without a build key (the caller removes it after timing). A network built before is
        reused, with 0 s."""
        results: list[tuple[Path, float] | None] = [None] * len(jobs)
        todo: list[tuple[int, Job, Path]] = []
        pending: set[str] = set()
        for i, job in enumerate(jobs):
            if job.build_key is not None and (job.build_key in self._kept or job.build_key in pending):
                continue  # reused below
            if job.build_key is not None:
                pending.add(job.build_key)
            todo.append((i, job, self._keep_folder(job) if job.build_key is not None else scratch / str(i)))
        for (i, job, place), seconds in zip(todo, self._build_all([(job, place) for _, job, place in todo])):
            results[i] = (place / "artifact", seconds)
            if job.build_key is not None:
                self._kept[job.build_key] = (place / "artifact", seconds)
        return [r if r is not None else (self._kept[str(job.build_key)][0], 0.0) for r, job in zip(results, jobs)]

    def _keep_folder(self, job: Job) -> Path:
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="deploycc-builds-")
        return Path(self._folder.name) / str(job.build_key)

    def _build_all(self, todo: list[tuple[Job, Path]]) -> list[float]:
        """Build seconds of each (job, folder): here one after another, or in the build processes."""
        written = [(_write(job, place), job, place / "artifact") for job, place in todo]
        if self.workers == 1 or len(written) < 2:
            return [build_written(model, job.target, out, job.options) for model, job, out in written]
        pool = self._executor()
        futures = [pool.submit(build_written, model, job.target, out, job.options) for model, job, out in written]
        return [future.result() for future in futures]

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        """Stop the build processes and remove the kept builds."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        self._kept.clear()
