"""The deploycc architecture file: versioned JSON describing one network of a search space.

Example::

    {"format": "deploycc-arch", "version": 1, "name": "mac_small", "space": "squeezenas",
     "backbone": "small", "head": "lraspp", "genotype": ["k3e1g2", ...], "num_classes": 19,
     "input_shape": [1, 3, 1024, 2048],
     "preprocessing": {"mean": [...], "std": [...], "scale": 0.00392156862745098,
                       "layout": "NCHW", "color": "RGB"}}

``parse_arch`` validates every field and raises one ``UserError`` per mistake, naming the file
and the field at fault.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploycc.core.errors import UserError

from . import spaces
from .spaces import SQUEEZENAS_BACKBONES, UNITS, layer_plan, unit_problem

FORMAT, VERSION = "deploycc-arch", 1
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
_KEYS = {
    "format",
    "version",
    "name",
    "space",
    "backbone",
    "head",
    "genotype",
    "num_classes",
    "input_shape",
    "preprocessing",
    "description",
}
_PRE_KEYS = {"mean", "std", "scale", "layout", "color"}
_DEFAULTS = {  # space -> (num_classes, input_shape)
    "squeezenas": (19, [1, 3, 1024, 2048]),
    "fbnet": (1000, [1, 3, 224, 224]),
    "squeezenet": (1000, [1, 3, 224, 224]),
}
LRASPP_MIN_HW = 49 * 16  # the 49x49 average pool runs on the stride-16 map


@dataclass(frozen=True)
class Preprocessing:
    """How raw 8-bit images become the network input: (x * scale - mean) / std."""

    mean: tuple[float, ...] = tuple(IMAGENET_MEAN)
    std: tuple[float, ...] = tuple(IMAGENET_STD)
    scale: float = 1 / 255
    layout: str = "NCHW"
    color: str = "RGB"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "scale": self.scale,
            "layout": self.layout,
            "color": self.color,
        }


@dataclass(frozen=True)
class Architecture:
    """A validated architecture; build it with ``deploycc.models.build_module``."""

    name: str
    space: str
    genotype: tuple[str, ...] = ()
    backbone: str | None = None
    head: str | None = None
    num_classes: int = 19
    input_shape: tuple[int, int, int, int] = (1, 3, 1024, 2048)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    description: str = ""
    source: str = field(default="<dict>", compare=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name, "space": self.space}
        if self.space == "squeezenas":
            d["backbone"], d["head"] = self.backbone, self.head
        elif self.space == "fbnet":
            d["head"] = self.head
        if self.genotype:
            d["genotype"] = list(self.genotype)
        d["num_classes"] = self.num_classes
        d["input_shape"] = list(self.input_shape)
        d["preprocessing"] = self.preprocessing.to_dict()
        if self.description:
            d["description"] = self.description
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def with_input_shape(self, shape) -> Architecture:
        """A copy at another input shape (``--input-shape``), refused in terms of that option, with
        the smallest shape that works."""
        if len(shape) == 4 and all(_is_int(v) for v in shape):
            given = "x".join(map(str, shape))
            if min(shape) < 1 or shape[1] != 3:
                raise UserError(f"{self.name} needs --input-shape N x 3 x H x W (positive, RGB), got {given}")
            problem = shape_problem(self.space, self.head, shape)
            if problem:
                multiple, minimum, why = size_rule(self.space, self.head)
                least, near = ("x".join(map(str, s)) for s in smallest_shapes(self.space, self.head, shape))
                rule = f"multiples of {multiple}, each " if multiple > 1 else ""
                also = f"; with your aspect ratio, --input-shape {near}" if near != least else ""
                raise UserError(
                    f"{self.name} needs --input-shape of at least {least} (H and W {rule}at least {minimum}: "
                    f"{why}), got {given}{also}"
                )
        d = self.to_dict()
        d["input_shape"] = list(shape)
        return parse_arch(d, source=self.source)


def _fail(source: str, fld: str, msg: str) -> UserError:
    return UserError(f"{source}: field '{fld}': {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _choice(d: dict, key: str, valid, default, source: str):
    v = d.get(key, default)
    if v is None:
        raise _fail(source, key, f"missing (valid: {', '.join(valid)})")
    if v not in valid:
        raise _fail(source, key, f"unknown {key} {v!r} (valid: {', '.join(valid)})")
    return v


def _check_header(d: Any, source: str) -> None:
    if not isinstance(d, dict):
        raise UserError(f"{source}: an architecture file must hold a JSON object")
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise _fail(source, unknown[0], f"unknown key (valid keys: {', '.join(sorted(_KEYS))})")
    if d.get("format") != FORMAT:
        raise _fail(source, "format", f"must be {FORMAT!r}, got {d.get('format')!r}")
    if d.get("version") != VERSION:
        raise _fail(
            source, "version", f"unsupported version {d.get('version')!r} (this deploycc reads version {VERSION})"
        )
    if not isinstance(d.get("name"), str) or not d["name"].strip():
        raise _fail(source, "name", "must be a non-empty string")
    if not isinstance(d.get("description", ""), str):
        raise _fail(source, "description", "must be a string")


def _check_genotype(d: dict, space: str, backbone: str | None, source: str) -> tuple[str, ...]:
    geno = d.get("genotype", [])
    if not isinstance(geno, list) or not all(isinstance(u, str) for u in geno):
        raise _fail(source, "genotype", "must be a list of unit-code strings")
    plan = layer_plan(space, backbone)
    if space == "squeezenet":
        if geno:
            raise _fail(source, "genotype", "squeezenet has no searchable layers; leave it empty")
        return ()
    valid = UNITS[space]
    for i, code in enumerate(geno):
        if code not in valid:
            raise _fail(
                source, "genotype", f"unknown unit {code!r} at index {i} (valid {space} units: {', '.join(valid)})"
            )
    what = f"the {backbone} backbone" if space == "squeezenas" else "the fbnet space"
    if len(geno) != len(plan):
        raise _fail(source, "genotype", f"has {len(geno)} units, {what} needs {len(plan)}")
    for i, (code, (ci, co, s)) in enumerate(zip(geno, plan)):
        problem = unit_problem(space, code, ci, co, s)
        if problem:
            raise _fail(source, "genotype", f"unit {i} ({ci}->{co}, stride {s}): {problem}")
    return tuple(geno)


def _check_shape(d: dict, space: str, head: str | None, default, source: str) -> tuple:
    shape = d.get("input_shape", default)
    if not isinstance(shape, list) or len(shape) != 4 or not all(_is_int(v) for v in shape):
        raise _fail(source, "input_shape", f"must be 4 integers [N, C, H, W], got {shape!r}")
    problem = shape_problem(space, head, shape)
    if problem:
        raise _fail(source, "input_shape", problem)
    return tuple(shape)


def size_rule(space: str, head: str | None) -> tuple[int, int, str]:
    """(multiple, minimum, why) for H and W of a net of ``space`` with ``head``."""
    if space == "squeezenas" and head == "lraspp":
        return 16, LRASPP_MIN_HW, "the LR-ASPP head's 49x49 pool runs on the stride-16 map"
    if space == "squeezenas":
        return 16, 16, "the encoder's output stride is 16"
    if space == "fbnet":
        return 32, 32, "the network's output stride is 32"
    return 1, 32, "squeezenet's stem and pools need 32 pixels"


def shape_problem(space: str, head: str | None, shape) -> str | None:
    """What is wrong with ``shape`` (4 integers) for this net, or None."""
    _, c, h, w = shape
    if min(shape) < 1:
        return f"all dimensions must be positive, got {list(shape)}"
    if c != 3:
        return f"needs 3 (RGB) channels, got C={c}"
    multiple, minimum, why = size_rule(space, head)
    if h % multiple or w % multiple or min(h, w) < minimum:
        rule = f"multiples of {multiple}, " if multiple > 1 else ""
        return f"H and W must be {rule}each at least {minimum} ({why}), got {h}x{w}"
    return None


def smallest_shapes(space: str, head: str | None, shape) -> tuple[tuple, tuple]:
    """The smallest shape this net takes, and the smallest at or above ``shape`` with its aspect ratio."""
    multiple, minimum, _ = size_rule(space, head)
    n, _, h, w = shape
    n = max(int(n), 1)

    def up(v: float) -> int:
        return max(minimum, -(-math.ceil(v) // multiple) * multiple)

    grow = max(1.0, minimum / max(min(h, w), 1))
    return (n, 3, minimum, minimum), (n, 3, up(max(h, 1) * grow), up(max(w, 1) * grow))


def _numbers(v: Any, n: int) -> bool:
    return (
        isinstance(v, list)
        and len(v) == n
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    )


def _check_pre(d: dict, source: str) -> Preprocessing:
    p = d.get("preprocessing", {})
    if not isinstance(p, dict):
        raise _fail(source, "preprocessing", "must be an object")
    unknown = sorted(set(p) - _PRE_KEYS)
    if unknown:
        raise _fail(source, f"preprocessing.{unknown[0]}", f"unknown key (valid: {', '.join(sorted(_PRE_KEYS))})")
    mean, std = p.get("mean", IMAGENET_MEAN), p.get("std", IMAGENET_STD)
    if not _numbers(mean, 3):
        raise _fail(source, "preprocessing.mean", f"must be 3 numbers, got {mean!r}")
    if not _numbers(std, 3) or min(std) <= 0:
        raise _fail(source, "preprocessing.std", f"must be 3 positive numbers, got {std!r}")
    scale = p.get("scale", 1 / 255)
    if not _numbers([scale], 1) or scale <= 0:
        raise _fail(source, "preprocessing.scale", f"must be a positive number, got {scale!r}")
    layout = _choice(p, "layout", ("NCHW",), "NCHW", source + ": preprocessing")
    color = _choice(p, "color", ("RGB", "BGR"), "RGB", source + ": preprocessing")
    return Preprocessing(tuple(float(x) for x in mean), tuple(float(x) for x in std), float(scale), layout, color)


def parse_arch(d: Any, source: str = "<arch>") -> Architecture:
    """Validate a decoded arch dict; ``source`` names it in error messages."""
    _check_header(d, source)
    space = _choice(d, "space", spaces.SPACES, None, source)
    backbone = head = None
    if space == "squeezenas":
        backbone = _choice(d, "backbone", tuple(SQUEEZENAS_BACKBONES), None, source)
        head = _choice(d, "head", spaces.SQUEEZENAS_HEADS, SQUEEZENAS_BACKBONES[backbone].head, source)
        if head != SQUEEZENAS_BACKBONES[backbone].head:
            raise _fail(
                source,
                "head",
                f"the {backbone} backbone needs the "
                f"{SQUEEZENAS_BACKBONES[backbone].head} head (its low-level feature is at "
                f"the stride that head expects), got {head!r}",
            )
    else:
        for key in ("backbone",) + (("head",) if space == "squeezenet" else ()):
            if key in d:
                raise _fail(source, key, f"not used by the {space} space; remove it")
        if space == "fbnet":
            head = _choice(d, "head", spaces.FBNET_HEADS, "classify", source)
    geno = _check_genotype(d, space, backbone, source)
    num_classes, default_shape = _DEFAULTS[space]
    num_classes = d.get("num_classes", num_classes)
    if not _is_int(num_classes) or num_classes < 1:
        raise _fail(source, "num_classes", f"must be an integer >= 1, got {num_classes!r}")
    shape = _check_shape(d, space, head, default_shape, source)
    return Architecture(
        d["name"],
        space,
        geno,
        backbone,
        head,
        num_classes,
        shape,
        _check_pre(d, source),
        d.get("description", ""),
        source,
    )


def load_arch(path: str | os.PathLike) -> Architecture:
    """Read and validate an architecture JSON file."""
    p = Path(path)
    if p.exists() and not p.is_file():  # a folder, pipe or device: never read (a pipe blocks forever)
        raise UserError(f"{p}: not a regular file; give an architecture .json file")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{p}: architecture file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: cannot read architecture file ({e.__class__.__name__})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return parse_arch(d, source=str(p))


def save_arch(arch: Architecture, path: str | os.PathLike) -> Path:
    """Write ``arch`` as JSON (atomically: temp file + rename)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
    tmp.write_text(arch.to_json() + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p
