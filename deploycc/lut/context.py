"""In-context LUT: each candidate unit timed in its place inside a full reference network.

An isolated entry (``profile.py``) pays for getting its input in and its output out, and misses
what happens at the unit's boundaries inside a compiled network (fusion, layout reorders, cache
reuse). Here every entry is an end-to-end measurement: T(reference with layer i set to unit u),
and the LUT holds ``entry(i, u) = T(reference with u at i) - T(reference)`` (0 for the
reference's own unit) with ``base = T(reference)``, so that the predictor (unchanged) sums

    T(reference) + sum over layers i of [T(reference with g_i at i) - T(reference)].

It is exact for the reference and every single-layer change of it, and assumes the changes at
different layers add up (``lut validate`` measures how far they do on held-out architectures).

The reference genotype: the 3x3, expansion-3 unit (``k3_e3`` in FBNet, ``k3e3`` in SqueezeNAS)
at every layer where it is legal and kept, otherwise the layer's first candidate in the space's
order (or one given by the caller). The variants are
whole architectures, measured through the same workflow as a validation's
(``measure_arch.measure_archs``: same pipeline, cache, resume, timers, local or fleet), so a
variant a validation sampled is measured once for both. With an interleaving local timer the
reference is the anchor timed in every group (``anchor.py``), and each delta is taken against
the reference of the same run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from deploycc.core.errors import UserError
from deploycc.targets import load_target
from deploycc.targets.backend import get_backend, require_available

from .entries import template_arch
from .measure_arch import ARCH_PROTOCOL, measure_archs
from .profile import ProfileSettings, _full_toolchain, plan, protocol_for
from .table import LUT, layer_row, save_lut, target_digest
from .timer import LocalTimer, Timer

DEFAULT_UNITS = ("k3_e3", "k3e3")  # the same unit in FBNet's and SqueezeNAS's codes
REFERENCE = "ctx/reference"


@dataclass(frozen=True)
class _LUTFacts:
    """The facts of the in-context LUT being made that measuring its architectures reads."""

    target: dict
    toolchain: dict
    threads: int
    statistic: str


def reference_genotype(layers: list[dict], given: list[str] | None = None) -> list[str]:
    """The reference: ``given`` (checked against each layer's candidates) or the default rule."""
    if given is not None:
        if len(given) != len(layers):
            raise UserError(f"--reference: {len(given)} units, the space has {len(layers)} searchable layers")
        for i, (code, cands) in enumerate(zip(given, layers)):
            if code not in cands:
                raise UserError(
                    f"--reference: unit {code!r} is not a candidate at layer {i} (candidates there: {', '.join(cands)})"
                )
        return list(given)
    return [next((u for u in DEFAULT_UNITS if u in cands), next(iter(cands))) for cands in layers]


def build_context_lut(
    space: str,
    out: str | os.PathLike,
    settings: ProfileSettings,
    input_shape=None,
    backbone: str | None = None,
    statistic: str = "median",
    cache=None,
    progress=None,
    units=None,
    timer: Timer | None = None,
    reference: list[str] | None = None,
) -> LUT:
    """Measure the reference and every single-layer variant of it; write the in-context LUT."""
    timer = timer or LocalTimer()
    protocol = protocol_for(statistic, base=ARCH_PROTOCOL, clock=settings.protocol.clock)
    settings = replace(settings, protocol=protocol)
    timer.check_build(settings)
    target = load_target(settings.target)
    require_available(get_backend(target.backend))
    arch = template_arch(space, input_shape, backbone)
    _, _, layers = plan(arch, units)
    ref = reference_genotype(layers, reference)
    variants = [(REFERENCE, ref)] + [
        (f"ctx/{i}/{code}", [*ref[:i], code, *ref[i + 1 :]])
        for i, cands in enumerate(layers)
        for code in cands
        if code != ref[i]
    ]
    archs = [_with_genotype(arch, geno, key) for key, geno in variants]
    shell = _LUTFacts(
        target={"name": target.name, "backend": target.backend, "sha256": target_digest(target)},
        toolchain=_full_toolchain(target),
        threads=settings.threads,
        statistic=statistic,
    )
    measured = measure_archs(timer, archs, shell, protocol, cache, progress, "lut build --mode in-context")
    entries = {key: {**measured.records[str(n)], "kind": "context", "key": key} for n, (key, _) in enumerate(variants)}
    lut = _assemble(
        arch, layers, ref, entries, shell, settings, statistic, timer.machine(measured.summary, len(measured.cached))
    )
    save_lut(lut, out)
    lut.source = str(out)
    return lut


def _with_genotype(arch, genotype: list[str], name: str):
    from .anchored import with_genotype

    return with_genotype(arch, genotype, name.replace("/", "-"))


def _assemble(arch, layers, ref, entries, shell, settings, statistic, machine) -> LUT:
    from deploycc.models import searchable_layers

    rows = [
        layer_row(li, {c: REFERENCE if c == ref[i] else f"ctx/{i}/{c}" for c in cands})
        for i, (li, cands) in enumerate(zip(searchable_layers(arch), layers))
    ]
    return LUT(
        space=arch.space,
        backbone=arch.backbone,
        head=arch.head,
        num_classes=arch.num_classes,
        input_shape=tuple(arch.input_shape),
        target=shell.target,
        toolchain=shell.toolchain,
        threads=settings.threads,
        statistic=statistic,
        protocol=settings.protocol.to_dict(),
        stem=REFERENCE,
        head_entry=REFERENCE,
        layers=rows,
        entries=entries,
        machine=machine,
        tune_trials=settings.tune_trials,
        mode="in-context",
        reference=list(ref),
    )
