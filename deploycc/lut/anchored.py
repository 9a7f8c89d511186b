"""The anchor network of a LUT, what an anchored LUT records, and where anchored and plain figures meet.

An anchored figure is (the subject's ratio to one fixed network, timed in the same interleaved
rounds: ``verify/ratio.py``) x (that network's median round value over the whole run:
``anchor.ratio_scale_all``). Two runs' anchored figures can be put on one scale only when their
anchor is the same network, so the anchor is chosen by one rule from the LUT's space and kept in
the LUT: the first architecture of ``lut validate``'s default sample (seed 0: each layer's unit
drawn from its candidates, in the space's unit order, by ``random.Random(0)``). ``lut build
--anchor`` times every isolated entry against it, ``lut validate`` and ``lut check`` time their
networks against it, and a measurement anchored to it is put on the LUT's scale (its ratio x the
anchor median recorded in the LUT), so the machine's speed change between the build and now
cancels too.

Mixing: a LUT whose entries are partly anchored sums figures taken at different speeds, and is
refused when read (``table.load_lut``). A LUT and a measurement of which only one is anchored
are both milliseconds at some speed of the machine, so they are compared, with a warning
(:func:`mixing_warning`): the error then includes the machine's speed change between the two
runs, which only an anchored pair takes out.
"""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np

from deploycc.verify.ratio import RatioRule

from .anchor import ratio_reference
from .timer import Job

ANCHOR_SEED = 0  # the anchor is the first architecture lut validate samples with this seed
# The rule of anchored LUT entries: lut validate's (+-1 %, 5-60 rounds, 300 s per group), with the
# anchor run once per round instead of as often as each entry (3 times): the anchor is a whole
# network, 10-500 times an entry, and its three runs per round were most of an anchored build's
# time. A noisier anchor round shows as a wider interval or more rounds, both recorded.
ENTRY_RULE = RatioRule(anchor_runs=1)


def default_anchor(space: str, candidates) -> list[str]:
    """The anchor genotype of a space whose layers offer ``candidates`` (codes per layer): the
    first draw of ``measure_arch.sample_genotypes`` with seed 0."""
    from deploycc.models import unit_codes

    rng = random.Random(ANCHOR_SEED)
    order = unit_codes(space)
    return [rng.choice([c for c in order if c in cands]) for cands in candidates]


def lut_anchor(lut) -> list[str]:
    """The anchor genotype of ``lut``: the one it was built against, else the default rule's."""
    if lut.anchoring:
        return list(lut.anchoring["anchor"]["genotype"])
    return default_anchor(lut.space, [layer["candidates"] for layer in lut.layers])


def anchor_median(lut) -> float | None:
    """The anchor's median over the LUT's build (ms); None for an unanchored LUT."""
    return float(lut.anchoring["anchor"]["median_ms"]) if lut.anchoring else None


def with_genotype(arch, genotype: list[str], name: str):
    """``arch`` with another genotype (same space, input shape and head)."""
    from deploycc.models import parse_arch

    return parse_arch({**arch.to_dict(), "genotype": list(genotype), "name": name}, source=name)


def anchor_job(arch, target: dict, toolchain: dict, threads: int) -> Job:
    """The job that builds the anchor network ``arch`` on ``target`` (it is timed, never cached)."""
    from deploycc.models import save_arch
    from deploycc.pipeline.pipeline import BuildOptions

    net = {k: v for k, v in arch.to_dict().items() if k not in ("name", "description")}
    body = {"anchor": net, "target": target, "toolchain": toolchain, "threads": threads}
    return Job(
        "anchor",
        hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24],
        {"genotype": list(arch.genotype)},
        lambda folder: save_arch(arch, folder / "arch.json"),
        target["name"],
        BuildOptions(verify_passes=False, threads=threads),
    )


def anchor_entries(timer, arch, layers, target: dict, toolchain: dict, settings) -> list[str]:
    """Set ``timer`` to time every entry of a LUT build against the anchor network of its space
    (``settings.ratio``: the rule); returns the anchor's genotype."""
    from deploycc.core.errors import UserError

    if not hasattr(timer, "anchor_on"):
        raise UserError("--anchor: a device fleet cannot time an anchor beside the entries; build with --no-anchor")
    genotype = default_anchor(arch.space, [list(cands) for cands in layers])
    net = with_genotype(arch, genotype, "lut-anchor")
    timer.anchor_on(anchor_job(net, target, toolchain, settings.threads), settings.ratio)
    return genotype


def table_anchoring(records: dict[str, dict], rule: RatioRule, genotype: list[str]) -> dict:
    """The ``anchoring`` metadata of a LUT whose entries were timed against ``genotype``: the rule
    (its target and caps), the anchor and its median over the build, the interval widths reached."""
    timed = [r for r in records.values() if r.get("ratio")]
    widths = [float(r["ratio"]["ci95_pct"]) for r in timed]
    return {
        "mode": "ratio",
        "rule": rule.to_dict(),
        "anchor": {"genotype": list(genotype), "median_ms": ratio_reference(timed), "seed": ANCHOR_SEED},
        "entries": len(timed),
        "reached": sum(bool(r["ratio"]["reached"]) for r in timed),
        "ci95_pct_median": float(np.median(widths)) if widths else None,
        "ci95_pct_max": float(np.max(widths)) if widths else None,
    }


def on_lut_scale(lut, ratio: float) -> float:
    """A measurement's ratio to the LUT's anchor, in ms at the LUT's anchor median."""
    median = anchor_median(lut)
    assert median is not None, "only an anchored LUT has a scale"
    return ratio * median


def speed_change_pct(lut, run_median: float | None) -> float | None:
    """How much slower (+) the anchor ran now than during the LUT's build, in %."""
    median = anchor_median(lut)
    return 100.0 * (run_median / median - 1.0) if median and run_median else None


def mixing_warning(lut, anchored: bool, what: str) -> str | None:
    """The warning for comparing ``lut`` with a measurement (``what``) when only one is anchored;
    None when both are, or neither, or the LUT's mode has no anchored build (in-context, profiled)."""
    if lut.anchoring and not anchored:
        return (
            f"{lut.source}: the LUT is anchored but {what} is not: the error includes the machine's speed change "
            "since the build, which only an anchored measurement takes out (drop --no-anchor)"
        )
    if anchored and not lut.anchoring and lut.mode == "isolated":
        return (
            f"{lut.source}: the LUT's entries are not anchored but {what} is: the error includes the machine's speed "
            "change since the build; build the LUT with --anchor to take it out"
        )
    return None
