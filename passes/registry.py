"""The registry of passes by name: what ``--passes``, a target file's ``passes`` list and
``deploycc passes`` resolve against.

The built-in passes are listed here (one file each in this folder); a pass written elsewhere
(a user's own, or a test's) joins with :func:`register_pass`. See docs/passes.md, "How to add a
pass".
"""

from __future__ import annotations

from deploycc.core.errors import UserError

from .base import DeployPass
from .fold_bn import FoldBatchNorm
from .fuse import FuseGroups
from .rewrite_dilated import RewriteDilatedConv

PASSES: dict[str, type[DeployPass]] = {p.name: p for p in (FoldBatchNorm, RewriteDilatedConv, FuseGroups)}


def register_pass(cls: type[DeployPass]) -> type[DeployPass]:
    """Make ``cls`` resolvable by its ``name`` (usable as a decorator). A name already taken by
    another class is refused: two passes with one name would make a build's trace ambiguous."""
    if not (isinstance(cls, type) and issubclass(cls, DeployPass)) or not cls.name:
        raise TypeError(f"{cls!r} is not a DeployPass subclass with a name")
    if PASSES.get(cls.name, cls) is not cls:
        raise ValueError(f"pass name {cls.name!r} is already registered by {PASSES[cls.name].__qualname__}")
    PASSES[cls.name] = cls
    return cls


def pass_names() -> list[str]:
    return list(PASSES)


def check_pass_options(options: dict) -> None:
    """Refuse (UserError) a ``--pass-option`` key that no registered pass reads, listing the valid
    keys, or a value its pass's check rejects; before any pass runs, so a typo never goes unnoticed."""
    checks = {key: check for cls in PASSES.values() for key, check in cls.option_checks.items()}
    for key, value in options.items():
        if key not in checks:
            raise UserError(f"--pass-option {key}: no pass reads this key; valid keys: {', '.join(sorted(checks))}")
        valid, what = checks[key]
        if not valid(value):
            raise UserError(f"--pass-option {key}={value!r}: must be {what}")


def resolve_passes(names: list[str], option: str = "--passes") -> list[type[DeployPass]]:
    """Pass classes for ``names``; an unknown name is a usage error listing the known ones."""
    out = []
    for name in names:
        if name not in PASSES:
            raise UserError(f"{option}: unknown pass {name!r}; known passes: {', '.join(PASSES)}")
        out.append(PASSES[name])
    return out
