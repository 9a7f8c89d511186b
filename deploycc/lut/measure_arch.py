"""End-to-end measurement of sampled architectures on a LUT's target (the ground truth).

Each architecture is exported at the LUT's input shape, built with the full pipeline on the
LUT's target (same passes, backend, thread count) and timed with the protocol. Results are cached
per architecture under a content hash, so an interrupted validation resumes without re-measuring.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path

from deploycc.verify.measure import Protocol, machine_facts, time_artifact

from .profile import cache_root, protocol_for
from .table import LUT

ARCH_PROTOCOL = Protocol(warmup=2, min_repeats=8, max_repeats=30, max_seconds=30.0, rel_tol=0.01, window=5)


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


def arch_cache_key(arch, lut: LUT, protocol: Protocol) -> str:
    body = {"arch": {k: v for k, v in arch.to_dict().items() if k not in ("name", "description")},
            "target": lut.target, "toolchain": lut.toolchain, "threads": lut.threads,
            "protocol": protocol.to_dict()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def measure_arch(arch, lut: LUT, protocol: Protocol | None = None, cache=None) -> dict:
    """{genotype, latency{...}, build_seconds, ...} of ``arch`` built and timed on the LUT's target."""
    protocol = protocol or arch_protocol(lut)
    folder = cache_root(cache) / "archs"
    path = folder / f"{arch_cache_key(arch, lut, protocol)}.json"
    if path.is_file():
        try:
            return {**json.loads(path.read_text()), "cached": True}
        except json.JSONDecodeError:
            path.unlink()
    record = _build_and_time(arch, lut, protocol)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, path)
    return {**record, "cached": False}


def _build_and_time(arch, lut: LUT, protocol: Protocol) -> dict:
    from deploycc.build.pipeline import BuildOptions, build
    from deploycc.models import save_arch

    with tempfile.TemporaryDirectory(prefix="deploycc-val-") as scratch:
        arch_file = save_arch(arch, Path(scratch) / "arch.json")
        start = time.perf_counter()
        build(str(arch_file), lut.target["name"], Path(scratch) / "artifact",
              BuildOptions(verify_passes=False, threads=lut.threads))
        build_s = time.perf_counter() - start
        _, latency = time_artifact(Path(scratch) / "artifact", protocol, lut.threads)
    return {"genotype": list(arch.genotype), "latency": latency.to_dict(), "build_seconds": round(build_s, 3),
            "load_average": machine_facts()["load_average"]}
