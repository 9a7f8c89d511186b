"""Profile LUT entries on a target and assemble the LUT; resumable through a per-entry cache.

Each entry is exported alone to ONNX, built with the same pipeline as a full network
(``deploycc.build.pipeline.build``: simplify, the target's passes, the target's backend, numerics
check) and timed through the common Session interface with the measurement protocol. The result
is written to the cache under a content hash of (entry, target definition, toolchain versions,
threads, protocol, tuning trials) the moment it is measured, so an interrupted ``lut build``
resumes where it stopped and a rebuild with nothing changed measures nothing.

On a TVM target with ``tune_trials > 0`` every entry build tunes its workloads into the target's
MetaSchedule database; later full-network builds on the same target apply that database.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from deploycc.core.errors import UserError
from deploycc.targets import load_target
from deploycc.targets.backend import get_backend, require_available
from deploycc.verify.measure import STATISTICS, Protocol, machine_facts, time_artifact

from .entries import EntrySpec, export_entry, head_spec, layer_candidates, stem_spec, template_arch
from .table import LUT, VERSION, save_lut, target_digest

LUT_PROTOCOL = Protocol(warmup=2, min_repeats=8, max_repeats=40, max_seconds=20.0, rel_tol=0.01, window=5)


def protocol_for(statistic: str, max_repeats: int | None = None, max_seconds: float | None = None,
                 base: Protocol = LUT_PROTOCOL, clock: str | None = None) -> Protocol:
    """``base`` judged on ``statistic`` (median, or min for all other statistics), on ``clock``,
    with optional caps."""
    return replace(base, statistic="median" if statistic == "median" else "min", clock=clock or base.clock,
                   max_repeats=max_repeats or base.max_repeats, max_seconds=max_seconds or base.max_seconds)


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    if cache:
        return Path(cache)
    return Path(os.environ.get("DEPLOYCC_CACHE", Path.home() / ".cache" / "deploycc")) / "lut"


@dataclass
class ProfileSettings:
    """How entries are built and timed; every field is part of an entry's cache key."""

    target: str = "cpu-ort"
    threads: int = 1
    protocol: Protocol = LUT_PROTOCOL
    tune_trials: int = 0
    trials_per_task: int | None = None
    tuning_db: str | None = None
    extra: dict = field(default_factory=dict)


def toolchain_versions(target) -> dict:
    """The versions that decide whether a LUT still describes this toolchain: the backend's."""
    return dict(get_backend(target.backend).versions())


def _full_toolchain(target) -> dict:
    import onnx
    import torch

    from deploycc import __version__
    return {**toolchain_versions(target), "deploycc": __version__, "onnx": onnx.__version__,
            "torch": torch.__version__.split("+")[0], "python": platform.python_version()}


def entry_cache_key(spec: EntrySpec, target, settings: ProfileSettings) -> str:
    body = {"lut_version": VERSION, "entry": spec.to_dict(), "target": target_digest(target),
            "toolchain": toolchain_versions(target), "threads": settings.threads,
            "protocol": settings.protocol.to_dict(), "tune_trials": settings.tune_trials,
            "machine": platform.machine()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def profile_entry(spec: EntrySpec, arch, target, settings: ProfileSettings, cache: Path) -> tuple[dict, bool]:
    """(entry record, came-from-cache) for one entry; measures and caches it when needed."""
    if spec.identity:
        return {**spec.to_dict(), "measured": False, "latency": {}, "note": "identity: no operation"}, True
    path = cache / f"{entry_cache_key(spec, target, settings)}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text()), True
        except json.JSONDecodeError:
            path.unlink()  # a torn write from an older crash: measure again
    record = _measure_entry(spec, arch, settings)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, path)
    return record, False


def _measure_entry(spec: EntrySpec, arch, settings: ProfileSettings) -> dict:
    from deploycc.build.pipeline import BuildOptions, build

    with tempfile.TemporaryDirectory(prefix="deploycc-lut-") as scratch:
        onnx_path = export_entry(spec, arch, Path(scratch) / "entry.onnx")
        options = BuildOptions(verify_passes=False, tune_trials=settings.tune_trials,
                               trials_per_task=settings.trials_per_task, tuning_db=settings.tuning_db,
                               threads=settings.threads, extra=dict(settings.extra))
        start = time.perf_counter()
        build(str(onnx_path), settings.target, Path(scratch) / "artifact", options)
        build_s = time.perf_counter() - start
        _, latency = time_artifact(Path(scratch) / "artifact", settings.protocol, settings.threads)
    return {**spec.to_dict(), "measured": True, "latency": latency.to_dict(),
            "build_seconds": round(build_s, 3), "load_average": machine_facts()["load_average"]}


def plan(arch, units: list[str] | None = None) -> tuple[EntrySpec, EntrySpec, list[dict[str, EntrySpec]]]:
    """(stem, head, per-layer candidates) of the space at ``arch``'s input shape, optionally
    restricted to the candidate ``units`` (a reduced search space profiles faster)."""
    from deploycc.models import searchable_layers, unit_codes
    unknown = sorted(set(units or ()) - set(unit_codes(arch.space)))
    if unknown:
        raise UserError(f"--units: {', '.join(unknown)} not in the {arch.space} space "
                        f"(valid: {', '.join(unit_codes(arch.space))})")
    layers = []
    for layer in searchable_layers(arch):
        cands = {c: s for c, s in layer_candidates(arch.space, layer).items() if units is None or c in units}
        if not cands:
            raise UserError(f"--units: none of {', '.join(units)} is legal at layer {layer.index} "
                            f"({layer.c_in}->{layer.c_out}, stride {layer.stride})")
        layers.append(cands)
    return stem_spec(arch), head_spec(arch), layers


def unique_specs(stem: EntrySpec, head: EntrySpec, layers: list[dict[str, EntrySpec]]) -> list[EntrySpec]:
    seen: dict[str, EntrySpec] = {stem.key: stem, head.key: head}
    for cands in layers:
        for spec in cands.values():
            seen.setdefault(spec.key, spec)
    return list(seen.values())


def build_lut(space: str, out: str | os.PathLike, settings: ProfileSettings, input_shape=None,
              backbone: str | None = None, statistic: str = "median", cache=None, progress=None,
              units: list[str] | None = None) -> LUT:
    """Profile every entry of ``space`` (cached) and write the LUT file atomically to ``out``.

    ``progress`` (optional) is called as ``progress(done, total, spec, cached)`` after each entry.
    """
    if statistic not in STATISTICS:
        raise UserError(f"--statistic {statistic!r}: choose one of {', '.join(STATISTICS)}")
    settings = replace(settings, protocol=protocol_for(statistic, base=settings.protocol))
    if settings.protocol.clock == "cpu" and settings.threads != 1:
        raise UserError(f"--clock cpu measures latency only with --threads 1 (got {settings.threads})")
    target = load_target(settings.target)
    require_available(get_backend(target.backend))
    arch = template_arch(space, input_shape, backbone)
    stem, head, layers = plan(arch, units)
    specs = unique_specs(stem, head, layers)
    cache_dir = cache_root(cache) / "entries"
    records: dict[str, dict] = {}
    for i, spec in enumerate(specs):
        records[spec.key], cached = profile_entry(spec, arch, target, settings, cache_dir)
        if progress:
            progress(i + 1, len(specs), spec, cached)
    from deploycc.models import searchable_layers
    layer_rows = [{"index": li.index, "c_in": li.c_in, "c_out": li.c_out, "stride": li.stride,
                   "in_h": li.in_h, "in_w": li.in_w, "candidates": {c: s.key for c, s in cands.items()}}
                  for li, cands in zip(searchable_layers(arch), layers)]
    lut = LUT(space=space, backbone=arch.backbone, head=arch.head, num_classes=arch.num_classes,
              input_shape=tuple(arch.input_shape), target={"name": target.name, "backend": target.backend,
                                                           "sha256": target_digest(target)},
              toolchain=_full_toolchain(target), threads=settings.threads, statistic=statistic,
              protocol=settings.protocol.to_dict(), stem=stem.key, head_entry=head.key, layers=layer_rows,
              entries=records, machine=machine_facts(), tune_trials=settings.tune_trials)
    save_lut(lut, out)
    lut.source = str(out)
    return lut


def clear_entry_cache(cache=None) -> None:
    shutil.rmtree(cache_root(cache) / "entries", ignore_errors=True)
