"""Profile LUT entries on a target and assemble the LUT; resumable through a per-entry cache.

Each entry is exported alone to ONNX, built with the same pipeline as a full network
(``deploycc.pipeline.pipeline.build``: simplify, the target's passes, the target's backend, numerics
check) and timed with the measurement protocol by a timer (``timer.LocalTimer``: here, through
the common Session interface; a device fleet plugs in the same way). The result is written to
the cache under a content hash of (entry, target definition, toolchain versions, threads,
protocol, tuning trials) the moment it is measured (``workflow.measure_jobs``), so an interrupted
``lut build`` resumes where it stopped and a rebuild with nothing changed measures nothing.

On a TVM target with ``tune_trials > 0`` every entry build tunes its workloads into the target's
MetaSchedule database; later full-network builds on the same target apply that database.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from deploycc.core.cache import environment
from deploycc.core.errors import UserError
from deploycc.targets import Target, load_target
from deploycc.targets.backend import get_backend, require_available
from deploycc.verify.measure import STATISTICS, Protocol
from deploycc.verify.ratio import RatioRule

from .anchor import ratio_scale_all, scale_all
from .entries import EntrySpec, export_entry, head_spec, layer_candidates, stem_spec, template_arch
from .table import LUT, VERSION, layer_row, save_lut, target_digest
from .timer import Job, LocalTimer, Timer
from .workflow import measure_jobs

if TYPE_CHECKING:
    from .space import ReducedSpace

# Entries are timed interleaved (verify/repeat.py): 8 at a time, 7 rounds of 3 runs each, rounds
# further than 3 scaled MADs from the median round rejected.
LUT_PROTOCOL = Protocol(
    warmup=2,
    min_repeats=3,
    max_repeats=40,
    max_seconds=20.0,
    rel_tol=0.01,
    window=5,
    rounds=7,
    interleave=8,
    reject_mad=3.0,
)


def protocol_for(
    statistic: str,
    max_repeats: int | None = None,
    max_seconds: float | None = None,
    base: Protocol = LUT_PROTOCOL,
    clock: str | None = None,
) -> Protocol:
    """``base`` judged on ``statistic`` (median, or min for all other statistics), on ``clock``,
    with optional caps."""
    return replace(
        base,
        statistic="median" if statistic == "median" else "min",
        clock=clock or base.clock,
        max_repeats=max_repeats or base.max_repeats,
        max_seconds=max_seconds or base.max_seconds,
    )


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
    ratio: RatioRule | None = None  # anchored: each entry a ratio to the anchor network (lut/anchored.py)


def toolchain_versions(target: Target) -> dict:
    """The versions that decide whether a LUT still describes this toolchain: the backend's."""
    return dict(get_backend(target.backend).versions())


def _full_toolchain(target: Target) -> dict:
    import onnx
    import torch

    from deploycc import __version__

    return {
        **toolchain_versions(target),
        "deploycc": __version__,
        "onnx": onnx.__version__,
        "torch": torch.__version__.split("+")[0],
        "python": platform.python_version(),
    }


def entry_cache_key(spec: EntrySpec, target: Target, settings: ProfileSettings, anchor: list | None = None) -> str:
    body: dict = {
        "lut_version": VERSION,
        "entry": spec.to_dict(),
        "target": target_digest(target),
        "toolchain": toolchain_versions(target),
        "threads": settings.threads,
        "protocol": settings.protocol.to_dict(),
        "tune_trials": settings.tune_trials,
        **environment(),
    }
    if settings.ratio is not None:  # a ratio to an anchor network is another measurement than a plain time
        body["ratio"], body["anchor"] = settings.ratio.to_dict(), anchor
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def entry_job(spec: EntrySpec, arch, target: Target, settings: ProfileSettings, anchor: list | None = None) -> Job:
    """The job that measures one entry: exported alone to ONNX, built with the entry settings."""
    if spec.identity:
        record = {**spec.to_dict(), "measured": False, "latency": {}, "note": "identity: no operation"}
        return Job(spec.key, None, record)
    from deploycc.pipeline.pipeline import BuildOptions

    options = BuildOptions(
        verify_passes=False,
        tune_trials=settings.tune_trials,
        trials_per_task=settings.trials_per_task,
        tuning_db=settings.tuning_db,
        threads=settings.threads,
        extra=dict(settings.extra),
    )
    return Job(
        spec.key,
        entry_cache_key(spec, target, settings, anchor),
        {**spec.to_dict(), "measured": True},
        lambda folder: export_entry(spec, arch, folder / "entry.onnx"),
        settings.target,
        options,
    )


def profile_entry(spec: EntrySpec, arch, target: Target, settings: ProfileSettings, cache: Path) -> tuple[dict, bool]:
    """(entry record, came-from-cache) for one entry, timed here; measures and caches it in the
    folder ``cache`` when needed."""
    measured = measure_jobs(
        LocalTimer(), [entry_job(spec, arch, target, settings)], Path(cache), settings.protocol, settings.threads
    )
    return measured.records[spec.key], spec.key in measured.cached


def plan(arch, units=None) -> tuple[EntrySpec, EntrySpec, list[dict[str, EntrySpec]]]:
    """(stem, head, per-layer candidates) of the space at ``arch``'s input shape, optionally
    restricted to the candidate ``units`` (a reduced search space profiles faster): one list
    for all layers, or a ``space.ReducedSpace`` (its own list per layer)."""
    from deploycc.models import searchable_layers, unit_codes

    from .space import ReducedSpace

    if isinstance(units, ReducedSpace):
        return _plan_reduced(arch, units)
    unknown = sorted(set(units or ()) - set(unit_codes(arch.space)))
    if unknown:
        raise UserError(
            f"--units: {', '.join(unknown)} not in the {arch.space} space (valid: {', '.join(unit_codes(arch.space))})"
        )
    layers = []
    for layer in searchable_layers(arch):
        cands = {c: s for c, s in layer_candidates(arch.space, layer).items() if units is None or c in units}
        if not cands:
            raise UserError(
                f"--units: none of {', '.join(units)} is legal at layer {layer.index} "
                f"({layer.c_in}->{layer.c_out}, stride {layer.stride})"
            )
        layers.append(cands)
    return stem_spec(arch), head_spec(arch), layers


def _plan_reduced(arch, space) -> tuple[EntrySpec, EntrySpec, list[dict[str, EntrySpec]]]:
    from deploycc.models import searchable_layers

    layers = searchable_layers(arch)
    space.check_fits(arch.space, arch.backbone, len(layers), f"--space {arch.space} {arch.backbone or ''}")
    cands = []
    for layer, keep in zip(layers, space.layers):
        legal = layer_candidates(arch.space, layer)
        chosen = {c: s for c, s in legal.items() if c in keep}
        if not chosen:
            raise UserError(f"{space.source}: none of {', '.join(keep)} is legal at layer {layer.index}")
        cands.append(chosen)
    return stem_spec(arch), head_spec(arch), cands


def unique_specs(stem: EntrySpec, head: EntrySpec, layers: list[dict[str, EntrySpec]]) -> list[EntrySpec]:
    seen: dict[str, EntrySpec] = {stem.key: stem, head.key: head}
    for cands in layers:
        for spec in cands.values():
            seen.setdefault(spec.key, spec)
    return list(seen.values())


def build_lut(
    space: str,
    out: str | os.PathLike,
    settings: ProfileSettings,
    input_shape=None,
    backbone: str | None = None,
    statistic: str = "median",
    cache=None,
    progress=None,
    units: list[str] | ReducedSpace | None = None,  # candidate codes, or a reduced space (--space-file)
    timer: Timer | None = None,
) -> LUT:
    """Profile every entry of ``space`` (cached) and write the LUT file atomically to ``out``.

    ``timer`` times the entries (default: :class:`LocalTimer`, here); ``progress`` (optional) is
    called as ``progress(step)`` with a ``workflow.Step`` after each entry (see ``measure_jobs``).
    """
    timer = timer or LocalTimer()
    if statistic not in STATISTICS:
        raise UserError(f"--statistic {statistic!r}: choose one of {', '.join(STATISTICS)}")
    settings = replace(settings, protocol=protocol_for(statistic, base=settings.protocol))
    timer.check_build(settings)
    target = load_target(settings.target)
    require_available(get_backend(target.backend))
    arch = template_arch(space, input_shape, backbone)
    stem, head, layers = plan(arch, units)
    anchor = None
    if settings.ratio is not None:  # every entry a ratio to the anchor network (lut/anchored.py)
        from .anchored import anchor_entries

        shell = {"name": target.name, "backend": target.backend, "sha256": target_digest(target)}
        anchor = anchor_entries(timer, arch, layers, shell, toolchain_versions(target), settings)
    jobs = [entry_job(spec, arch, target, settings, anchor) for spec in unique_specs(stem, head, layers)]
    if anchor is None and hasattr(timer, "anchor_on"):  # the stem entry is timed in every group (lut/anchor.py)
        timer.anchor_on(jobs[0])
    measured = measure_jobs(
        timer,
        jobs,
        cache_root(cache) / timer.folder("entries"),
        settings.protocol,
        settings.threads,
        progress,
        "lut build",
    )
    lut = assemble_lut(
        arch,
        (stem, head, layers),
        target,
        settings,
        statistic,
        (ratio_scale_all if anchor else scale_all)(measured.records, statistic),
        timer.machine(measured.summary, len(measured.cached)),
    )
    if anchor is not None and settings.ratio is not None:
        from .anchored import table_anchoring

        lut.anchoring = table_anchoring(lut.entries, settings.ratio, anchor)
    save_lut(lut, out)
    lut.source = str(out)
    return lut


def assemble_lut(
    arch, parts, target: Target, settings: ProfileSettings, statistic: str, records: dict, machine: dict
) -> LUT:
    """The LUT of ``arch``'s space from its (stem, head, layers) plan and the entry records."""
    from deploycc.models import searchable_layers

    stem, head, layers = parts
    layer_rows = [
        layer_row(li, {c: s.key for c, s in cands.items()}) for li, cands in zip(searchable_layers(arch), layers)
    ]
    return LUT(
        space=arch.space,
        backbone=arch.backbone,
        head=arch.head,
        num_classes=arch.num_classes,
        input_shape=tuple(arch.input_shape),
        target={"name": target.name, "backend": target.backend, "sha256": target_digest(target)},
        toolchain=_full_toolchain(target),
        threads=settings.threads,
        statistic=statistic,
        protocol=settings.protocol.to_dict(),
        stem=stem.key,
        head_entry=head.key,
        layers=layer_rows,
        entries=records,
        machine=machine,
        tune_trials=settings.tune_trials,
    )


def clear_entry_cache(cache=None) -> None:
    shutil.rmtree(cache_root(cache) / "entries", ignore_errors=True)
