"""Reduced search spaces: which candidate units each searchable layer keeps.

Written by ``deploycc lut friendliness --reduce`` (``friendliness.py``) and read by ``lut build
--space-file``, ``lut predict --space-file`` and ``Predictor(lut, space=...)``. A versioned JSON
file::

    {"format": "deploycc-space", "version": 1, "space": "squeezenas", "backbone": "small",
     "input_shape": [1, 3, 1024, 2048], "layers": [["k3_e1", "skip", ...], ...],
     "rule": "...", "sources": [...]}

Reading is strict (one error naming the file); a space file is refused for another space,
backbone or number of layers than the LUT or build it is used with.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from deploycc.core.errors import UserError

FORMAT, VERSION = "deploycc-space", 1


@dataclass
class ReducedSpace:
    space: str
    backbone: str | None
    input_shape: tuple[int, ...]
    layers: list[list[str]]  # the units each searchable layer keeps
    rule: str = ""
    sources: list[str] = field(default_factory=list)
    source: str = "<space>"

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "space": self.space,
            "backbone": self.backbone,
            "input_shape": list(self.input_shape),
            "layers": self.layers,
            "rule": self.rule,
            "sources": self.sources,
        }

    def check_fits(self, space: str, backbone: str | None, num_layers: int, what: str) -> None:
        for name, mine, theirs in (
            ("space", self.space, space),
            ("backbone", self.backbone, backbone),
            ("number of searchable layers", len(self.layers), num_layers),
        ):
            if mine != theirs:
                raise UserError(f"{self.source}: the reduced space is for {name} {mine!r}, {what} has {theirs!r}")


def save_space(space: ReducedSpace, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(space.to_dict(), indent=1) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_space(path: str | os.PathLike) -> ReducedSpace:
    from deploycc.models import unit_codes

    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: space file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable space file ({exc.__class__.__name__})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != VERSION:
        raise UserError(f"{path}: not a deploycc space file (format {FORMAT!r}, version {VERSION})")
    missing = [k for k in ("space", "backbone", "input_shape", "layers") if k not in d]
    if missing:
        raise UserError(f"{path}: space file is missing field(s) {', '.join(missing)}")
    try:
        valid = set(unit_codes(d["space"]))
    except Exception:
        raise UserError(f"{path}: unknown space {d['space']!r}") from None
    layers = d["layers"]
    if not isinstance(layers, list) or not all(isinstance(units, list) and units for units in layers):
        raise UserError(f"{path}: 'layers' must be a list of non-empty unit lists, one per searchable layer")
    for i, units in enumerate(layers):
        bad = [u for u in units if u not in valid]
        if bad:
            raise UserError(f"{path}: layer {i}: {', '.join(map(str, bad))} not in the {d['space']} space")
    return ReducedSpace(
        d["space"],
        d["backbone"],
        tuple(d["input_shape"]),
        [list(u) for u in layers],
        d.get("rule", ""),
        list(d.get("sources", [])),
        str(path),
    )
