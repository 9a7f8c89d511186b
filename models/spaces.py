"""Search-space tables: unit codes, backbone/stage layouts and per-unit legality checks.

Pure Python (no torch) so the arch-file validator can use it without building anything.
A *layer plan* is the list of searchable layers of an architecture: ``(c_in, c_out, stride)``
per unit, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

SPACES = ("squeezenas", "fbnet", "squeezenet")


def halved(n: int) -> int:
    """Output size of every stride-2 conv of these spaces on an input of size ``n``: k odd with
    pad (k - 1) / 2 * d, or 1 x 1 with pad 0, both give ceil(n / 2)."""
    return (n - 1) // 2 + 1


@dataclass(frozen=True)
class UnitSpec:
    """One candidate unit: kernel, expansion, groups, dilation; ``skip`` has kernel 0."""

    code: str
    kernel: int
    expansion: int
    groups: int = 1
    dilation: int = 1

    @property
    def is_skip(self) -> bool:
        return self.kernel == 0


def _sq(code: str) -> UnitSpec:
    if code == "skip":
        return UnitSpec(code, 0, 0)
    k, e = int(code[1]), int(code[3])
    return UnitSpec(code, k, e, 2 if "g2" in code else 1, 2 if "d2" in code else 1)


def _fb(code: str) -> UnitSpec:
    if code == "skip":
        return UnitSpec(code, 0, 0)
    parts = code.split("_")
    return UnitSpec(code, int(parts[0][1:]), int(parts[1][1:]), 2 if "g2" in parts else 1)


SQUEEZENAS_UNITS: dict[str, UnitSpec] = {
    c: _sq(c)
    for c in (
        "k3e1",
        "k3e1g2",
        "k3e3",
        "k3e6",
        "k5e1",
        "k5e1g2",
        "k5e3",
        "k5e6",
        "k3e1d2",
        "k3e1g2d2",
        "k3e3d2",
        "k3e6d2",
        "skip",
    )
}
FBNET_UNITS: dict[str, UnitSpec] = {
    c: _fb(c) for c in ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
}
UNITS = {"squeezenas": SQUEEZENAS_UNITS, "fbnet": FBNET_UNITS, "squeezenet": {}}


@dataclass(frozen=True)
class Backbone:
    """A SqueezeNAS backbone: stem width, stages (channels, repeats, first stride), extras."""

    init_ch: int
    stages: tuple[tuple[int, int, int], ...]
    last_conv: int | None  # 1x1 conv-BN-ReLU after the last stage (small only)
    low_level_unit: int
    head: str
    head_mid: int


SQUEEZENAS_BACKBONES: dict[str, Backbone] = {
    "small": Backbone(16, ((16, 4, 2), (24, 4, 2), (40, 4, 2), (48, 4, 1), (96, 4, 1)), 256, 7, "lraspp", 128),
    # the last stage is 320 channels x final width multiplier 0.5 = 160
    "large": Backbone(
        16,
        ((16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (96, 4, 1), (160, 4, 1), (160, 1, 1)),
        None,
        8,
        "lraspp",
        128,
    ),
    "xlarge": Backbone(
        48,
        ((24, 1, 1), (32, 4, 2), (48, 4, 2), (96, 4, 2), (144, 4, 1), (240, 4, 1), (320, 1, 1)),
        None,
        4,
        "aspp",
        160,
    ),
}
SQUEEZENAS_HEADS = ("lraspp", "aspp")

FBNET_STEM = 16
FBNET_STAGES = ((16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
FBNET_LAST = 1984
FBNET_HEADS = ("classify",)


def _plan(init_ch: int, stages) -> list[tuple[int, int, int]]:
    plan, c = [], init_ch
    for ch, reps, stride in stages:
        for i in range(reps):
            plan.append((c, ch, stride if i == 0 else 1))
            c = ch
    return plan


def layer_plan(space: str, backbone: str | None = None) -> list[tuple[int, int, int]]:
    """(c_in, c_out, stride) of each searchable layer of a space (and backbone)."""
    if space == "squeezenas":
        bb = SQUEEZENAS_BACKBONES[backbone or "small"]
        return _plan(bb.init_ch, bb.stages)
    if space == "fbnet":
        return _plan(FBNET_STEM, FBNET_STAGES)
    return []


def unit_problem(space: str, code: str, c_in: int, c_out: int, stride: int) -> str | None:
    """Why this unit cannot be built at these channels/stride, or None when it can."""
    units = UNITS.get(space, {})
    if code not in units:
        return f"unknown unit {code!r} (valid: {', '.join(units)})"
    if min(c_in, c_out) < 1 or stride not in (1, 2):
        return f"needs positive channels and stride 1 or 2 (got {c_in}->{c_out}, stride {stride})"
    spec = units[code]
    if spec.is_skip:
        if space == "squeezenas" and stride == 2 and c_out % 2:
            return f"skip with stride 2 (factorized reduce) needs even C_out, got {c_out}"
        return None
    hidden = round(c_in * spec.expansion)
    for what, n in (("C_in", c_in), ("C_out", c_out), ("hidden", hidden)):
        if n % spec.groups:
            return f"{code} has {spec.groups} groups but {what}={n} is not divisible by it"
    return None
