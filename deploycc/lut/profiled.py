"""Profiled in-context LUT: entries read from per-kernel profiles of whole sampled networks.

An isolated entry pays for getting its input in and its output out; an in-context entry built
from end-to-end totals is the difference of two ~150 ms figures for a unit worth 1-40 ms, and
inherits both of their noise. Here no entry is a difference: whole networks are sampled so that
every (position, unit) occurs in ``cover`` of them, each network is built with the full pipeline
on the target and profiled per kernel (``verify/profile.py``: ONNX Runtime's profiler, TVM's VM
instrument; each kernel's median over the profiled runs), every kernel is attributed to the
unit(s) it covers (``kernels.py``: a kernel that joins two units is shared between them and
kept as an entry of its own), and the entry of
(position, unit) is the median of that unit's in-network time over the networks that hold it.
Stem and head entries come the same way from every network; kernels placed nowhere go to the
head, the base of every prediction.

Kernel times leave out the runtime's work between kernels and include the profiler's own cost,
so the raw sum is not the end-to-end latency: ``lut validate`` reports it raw and calibrated.

Each profiled network is cached under a hash of (its architecture, the target, the toolchain,
threads, profile runs), so an interrupted build resumes and a rebuild profiles nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections import defaultdict
from functools import partial
from pathlib import Path

import numpy as np

from deploycc.core.cache import JsonCache, environment
from deploycc.core.errors import UserError
from deploycc.targets import load_target
from deploycc.targets.backend import get_backend, require_available

from .context import _with_genotype
from .entries import template_arch
from .jobs import Builder, Job
from .kernels import attribute, kernel_key, ort_cover_names
from .profile import ProfileSettings, _full_toolchain, cache_root, plan
from .table import LUT, layer_row, save_lut, target_digest
from .workflow import Step

PROFILE_RUNS = 10
PER_RUN = "median"  # a kernel's figure: the median of its time in each run (a disturbed run does not move it)


def covering_genotypes(layers: list[list[str]], cover: int, seed: int) -> list[list[str]]:
    """Genotypes in which every (layer, candidate) occurs at least ``cover`` times: network k
    takes, at every layer, a candidate seen least so far (ties broken by ``random.Random(seed)``)."""
    if cover < 1:
        raise UserError(f"--cover {cover}: every unit needs at least 1 network")
    rng = random.Random(seed)
    seen = [dict.fromkeys(cands, 0) for cands in layers]
    out: list[list[str]] = []
    while any(min(s.values()) < cover for s in seen):
        geno = []
        for s in seen:
            least = min(s.values())
            code = rng.choice([c for c, k in s.items() if k == least])
            s[code] += 1
            geno.append(code)
        out.append(geno)
    return out


def profile_network(arch, target: str, threads: int, runs: int) -> dict:
    """{parts: ms per part, kernels: kernels joining units, total_ms} of ``arch`` built and profiled here."""
    from deploycc.models import save_arch
    from deploycc.pipeline.pipeline import BuildOptions, build

    with tempfile.TemporaryDirectory(prefix="deploycc-profiled-") as tmp_name:
        tmp = Path(tmp_name)
        path = save_arch(arch, tmp / "arch.json")
        build(str(path), target, tmp / "art", BuildOptions(verify_passes=False, threads=threads))
        return profile_built(arch, tmp / "art", threads, runs)


def profile_built(arch, artifact: Path, threads: int, runs: int) -> dict:
    """The record of :func:`profile_network` for ``arch`` already built into ``artifact``."""
    from deploycc.verify.profile import profile_artifact

    profile = profile_artifact(artifact, threads, runs, per_run=PER_RUN)
    covers = ort_cover_names(artifact / "model.onnx") if profile["backend"] == "ort" else {}
    parts, joined = attribute(profile["layers"], covers, arch.to_dict())
    return {
        "genotype": list(arch.genotype),
        "backend": profile["backend"],
        "parts": parts,
        "kernels": joined,
        "total_ms": float(sum(r["ms"] for r in profile["layers"])),
    }


def _network_job(net, target: str, threads: int) -> Job:
    """The job that builds one profiled network (never timed: its key is None)."""
    from deploycc.pipeline.pipeline import BuildOptions

    options = BuildOptions(verify_passes=False, threads=threads)
    return Job(net.name, None, {}, partial(_save, net), target, options)


def _save(net, folder: Path) -> Path:
    from deploycc.models import save_arch

    return save_arch(net, folder / "arch.json")


def _network_key(arch, shell: dict, threads: int, runs: int) -> str:
    body: dict = {"arch": {k: v for k, v in arch.to_dict().items() if k not in ("name", "description")}}
    body |= {"target": shell["target"], "toolchain": shell["toolchain"], "threads": threads, "runs": runs}
    body |= {"per_run": PER_RUN, **environment()}  # as entries: another deploycc profiles again
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def entry_latency(values: list[float]) -> dict:
    """A ``Latency``-shaped record of one entry's in-network times over the networks holding it."""
    a = np.asarray(values, dtype=np.float64)
    return {
        "median_ms": float(np.median(a)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "min_ms": float(a.min()),
        "mean_ms": float(a.mean()),
        "stdev_ms": float(a.std()),
        "runs": int(a.size),
        "stable": True,
    }


def build_profiled_lut(
    space: str,
    out: str | os.PathLike,
    settings: ProfileSettings,
    input_shape=None,
    backbone: str | None = None,
    statistic: str = "median",
    cache=None,
    progress=None,
    units=None,
    cover: int = 3,
    seed: int = 0,
    runs: int = PROFILE_RUNS,
    build_workers: int = 1,
) -> LUT:
    """Profile networks covering every (position, unit) ``cover`` times; write the profiled LUT.
    With ``build_workers`` > 1 that many networks are compiled at a time in as many processes
    (``jobs.Builder``), then profiled one after another: no profile overlaps a build."""
    target = load_target(settings.target)
    if target.backend not in ("ort", "tvm"):
        raise UserError(f"--mode profiled: target {target.name!r} has no per-kernel profiler (ORT and TVM have)")
    require_available(get_backend(target.backend))
    arch = template_arch(space, input_shape, backbone)
    stem, head, layers = plan(arch, units)
    genotypes = covering_genotypes([list(c) for c in layers], cover, seed)
    shell = {
        "target": {"name": target.name, "backend": target.backend, "sha256": target_digest(target)},
        "toolchain": _full_toolchain(target),
    }
    store = JsonCache(cache_root(cache) / "profiled", "lut-profiled-network")
    nets = [_with_genotype(arch, geno, f"profiled-{seed}-{k}") for k, geno in enumerate(genotypes)]
    keys = [_network_key(net, shell, settings.threads, runs) for net in nets]
    records: dict[int, dict] = {}
    for k, key in enumerate(keys):
        record = store.get(key)
        if record is not None:
            records[k] = record
            if progress:
                progress(Step(len(records), len(nets), str(k), "cached", record))
    missing = [k for k in range(len(nets)) if k not in records]
    builder = Builder(build_workers)
    try:
        for start in range(0, len(missing), build_workers):
            chunk = missing[start : start + build_workers]
            with tempfile.TemporaryDirectory(prefix="deploycc-profiled-") as scratch:
                jobs = [_network_job(nets[k], target.name, settings.threads) for k in chunk]
                for k, (artifact, _) in zip(chunk, builder.build_group(jobs, Path(scratch))):
                    records[k] = profile_built(nets[k], artifact, settings.threads, runs)
                    store.put(keys[k], records[k])
                    if progress:
                        progress(Step(len(records), len(nets), str(k), "done", records[k]))
    finally:
        builder.close()
    networks = [records[k] for k in range(len(nets))]
    lut = assemble(arch, (stem, head, layers), networks, shell, settings, statistic, {"cover": cover, "runs": runs})
    save_lut(lut, out)
    lut.source = str(out)
    return lut


def _entries(layers, networks: list[dict]) -> dict[str, dict]:
    """Every entry (stem, head, each (layer, unit), each kernel joining units) from the networks."""
    times: dict[str, list[float]] = defaultdict(list)
    joined: dict[str, list[dict]] = defaultdict(list)
    for net in networks:
        parts = net["parts"]
        times["prof/stem"].append(parts.get("stem", 0.0))
        times["prof/head"].append(parts.get("head", 0.0))
        for i, code in enumerate(net["genotype"]):
            if not layers[i][code].identity:
                times[f"prof/{i}/{code}"].append(parts.get(f"layer {i}", 0.0))
        for kernel in net["kernels"]:
            joined[kernel_key(kernel)].append(kernel)
    entries: dict[str, dict] = {
        k: {"kind": "profiled", "key": k, "latency": entry_latency(v)} for k, v in times.items()
    }
    for i, cands in enumerate(layers):
        for code, spec in cands.items():
            if spec.identity:
                entries[f"prof/{i}/{code}"] = {"kind": "profiled", "key": f"prof/{i}/{code}", "measured": False}
    for k, kernels in joined.items():
        first = kernels[0]
        entries[k] = {
            "kind": "kernel",
            "key": k,
            "parts": first["parts"],
            "units": first["units"],
            "op_type": first["op_type"],
            "networks": len(kernels),
            "latency": entry_latency([x["ms"] for x in kernels]),
        }
    return entries


def assemble(arch, parts, networks, shell, settings: ProfileSettings, statistic: str, how: dict) -> LUT:
    """The profiled LUT of ``arch``'s space from its plan and the profiled networks."""
    from deploycc.models import searchable_layers
    from deploycc.verify.measure import machine_facts

    _, _, layers = parts
    rows = [
        layer_row(li, {c: f"prof/{i}/{c}" for c in cands})
        for i, (li, cands) in enumerate(zip(searchable_layers(arch), layers))
    ]
    return LUT(
        space=arch.space,
        backbone=arch.backbone,
        head=arch.head,
        num_classes=arch.num_classes,
        input_shape=tuple(arch.input_shape),
        target=shell["target"],
        toolchain=shell["toolchain"],
        threads=settings.threads,
        statistic=statistic,
        # the clock its validations time on (kernel times are the profiler's own, on the wall clock)
        protocol={"clock": settings.protocol.clock, "profile_runs": how["runs"], "cover": how["cover"]}
        | {"networks": len(networks)},
        stem="prof/stem",
        head_entry="prof/head",
        layers=rows,
        entries=_entries(layers, networks),
        machine=machine_facts(),
        tune_trials=settings.tune_trials,
        mode="profiled",
    )
