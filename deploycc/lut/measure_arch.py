"""End-to-end measurement of sampled architectures on a LUT's target (the ground truth).

Each architecture is exported at the LUT's input shape, built with the full pipeline on the
LUT's target (same passes, backend, thread count) and timed with the protocol, by a timer (here by
default, see ``timer``). Results are cached per architecture under a content hash
(``workflow.measure_jobs``), so an interrupted validation resumes without re-measuring.
"""

from __future__ import annotations

import hashlib
import json
import random
import typing

from deploycc.verify.measure import Protocol
from deploycc.verify.ratio import RatioRule

from .anchor import ratio_scale_all
from .profile import cache_root, protocol_for
from .table import LUT
from .timer import Job, LocalTimer, Timer
from .workflow import Measured, measure_jobs

# Whole networks interleaved 4 at a time, 5 rounds of 2 runs, the same outlier rule as entries.
ARCH_PROTOCOL = Protocol(
    warmup=2,
    min_repeats=2,
    max_repeats=30,
    max_seconds=30.0,
    rel_tol=0.01,
    window=5,
    rounds=5,
    interleave=4,
    reject_mad=3.0,
)


def arch_protocol(lut: LUT) -> Protocol:
    """The protocol for whole networks, judged on the LUT's statistic and timed on its clock."""
    return protocol_for(lut.statistic, base=ARCH_PROTOCOL, clock=lut.protocol.get("clock", "wall"))


def sample_genotypes(lut: LUT, n: int, seed: int) -> list[list[str]]:
    """``n`` distinct genotypes, each layer's unit drawn uniformly from the LUT's candidates there
    (``random.Random(seed)``); fewer when the LUT's space holds fewer."""
    from deploycc.models import unit_codes

    rng = random.Random(seed)
    # the space's own unit order, so that a full LUT draws what models.sample_genotype would
    choices = [[c for c in unit_codes(lut.space) if c in layer["candidates"]] for layer in lut.layers]
    out, seen = [], set()
    for _ in range(100 * max(n, 1)):
        geno = [rng.choice(c) for c in choices]
        if tuple(geno) not in seen:
            seen.add(tuple(geno))
            out.append(geno)
        if len(out) == n:
            break
    return out


class LUTFacts(typing.Protocol):
    """What measuring architectures reads of a LUT: a LUT, or the facts of one still being made
    (``lut/context.py``)."""

    @property
    def target(self) -> dict: ...
    @property
    def toolchain(self) -> dict: ...
    @property
    def threads(self) -> int: ...
    @property
    def statistic(self) -> str: ...


def arch_cache_key(
    arch, lut: LUTFacts, protocol: Protocol, ratio: RatioRule | None = None, anchor: list | None = None
) -> str:
    body: dict = {
        "arch": {k: v for k, v in arch.to_dict().items() if k not in ("name", "description")},
        "target": lut.target,
        "toolchain": lut.toolchain,
        "threads": lut.threads,
        "protocol": protocol.to_dict(),
    }
    if ratio is not None:  # a ratio to the anchor is another measurement than a plain time
        body["ratio"] = ratio.to_dict()
        if anchor is not None:  # and a ratio to another network another again
            body["anchor"] = list(anchor)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def arch_job(
    arch, lut: LUTFacts, protocol: Protocol, job_id: str, ratio: RatioRule | None = None, anchor: list | None = None
) -> Job:
    """The job that measures ``arch`` end to end: the full pipeline on the LUT's target and threads."""
    from deploycc.models import save_arch
    from deploycc.pipeline.pipeline import BuildOptions

    return Job(
        job_id,
        arch_cache_key(arch, lut, protocol, ratio, anchor),
        {"genotype": list(arch.genotype)},
        lambda folder: save_arch(arch, folder / "arch.json"),
        lut.target["name"],
        BuildOptions(verify_passes=False, threads=lut.threads),
        arch_build_key(arch, lut),
    )


def arch_build_key(arch, lut: LUTFacts) -> str:
    """What building ``arch`` depends on (not how it is timed): the network, target, toolchain, threads."""
    body = {
        "arch": {k: v for k, v in arch.to_dict().items() if k not in ("name", "description")},
        "target": lut.target,
        "toolchain": lut.toolchain,
        "threads": lut.threads,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def measure_archs(
    timer: Timer,
    archs: list,
    lut: LUTFacts,
    protocol: Protocol,
    cache=None,
    progress=None,
    what: str = "",
    ratio: RatioRule | None = None,
    anchor=None,
) -> Measured:
    """The records of ``archs`` (job ids "0", "1", ...), from the cache or timed by ``timer``; the
    anchor (``anchor``, else the first of several) is timed in every group and the figures are
    scaled to it (``lut/anchor.py``). With ``ratio`` (and a timer that times ratios), every record
    is its ratio to the anchor within each round times the anchor's median over the run."""
    anchored = (anchor is not None or len(archs) > 1) and hasattr(timer, "anchor_on")
    ratio = ratio if anchored else None
    net = anchor if anchor is not None else archs[0]
    genotype = list(net.genotype) if ratio is not None else None
    jobs = [arch_job(arch, lut, protocol, str(i), ratio, genotype) for i, arch in enumerate(archs)]
    if anchored and hasattr(timer, "anchor_on"):
        timer.anchor_on(jobs[0] if anchor is None else arch_job(anchor, lut, protocol, "anchor"), ratio)
    m = measure_jobs(timer, jobs, cache_root(cache) / timer.folder("archs"), protocol, lut.threads, progress, what)
    return Measured(ratio_scale_all(m.records, lut.statistic), m.cached, m.summary)


def measure_arch(arch, lut: LUT, protocol: Protocol | None = None, cache=None) -> dict:
    """{genotype, latency{...}, build_seconds, ..., cached} of ``arch`` built and timed here on the
    LUT's target."""
    measured = measure_archs(LocalTimer(), [arch], lut, protocol or arch_protocol(lut), cache)
    return {**measured.records["0"], "cached": "0" in measured.cached}
