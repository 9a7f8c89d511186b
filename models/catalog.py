"""The zoo of bundled architectures (``models/zoo/*.json``) and name resolution: what a MODEL
argument that is not a file names."""

from __future__ import annotations

from pathlib import Path

from deploycc.core.errors import UserError

from .arch import Architecture, load_arch
from .spaces import UNITS

ZOO_DIR = Path(__file__).resolve().parent / "zoo"


def zoo_names() -> list[str]:
    """Names of the bundled architectures (``models/zoo/*.json``)."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.json"))


def zoo_path(name: str) -> Path:
    """Path of a bundled architecture file; unknown name -> UserError listing the zoo."""
    p = ZOO_DIR / f"{name}.json"
    if name not in zoo_names():
        raise UserError(f"unknown zoo architecture {name!r} (zoo: {', '.join(zoo_names())})")
    return p


def resolve_arch(name_or_path: str | Path) -> Architecture:
    """A zoo name or a path to an architecture .json file."""
    s = str(name_or_path)
    if s in zoo_names():
        return load_arch(zoo_path(s))
    if s.endswith(".json") or Path(s).exists():
        return load_arch(s)
    raise UserError(f"{s!r} is neither a zoo architecture nor an existing .json file (zoo: {', '.join(zoo_names())})")


def unit_codes(space: str) -> list[str]:
    """The candidate unit codes of a search space."""
    return list(UNITS[space])
