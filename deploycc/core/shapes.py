"""Parsing and formatting of static input shapes such as ``1x3x1024x2048``."""

from __future__ import annotations

from deploycc.core.errors import UserError


def parse_shape(text: str, option: str = "--input-shape") -> tuple[int, ...]:
    """Parse ``1x3xHxW`` (also ``1,3,H,W``) into a tuple of positive ints."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise UserError(f"{option} {text!r} is not a shape like 1x3x1024x2048") from None
    if not dims or any(d <= 0 for d in dims):
        raise UserError(f"{option} {text!r} must have positive dimensions")
    return dims


def parse_input_shapes(text: str | None) -> dict[str, tuple[int, ...]] | tuple[int, ...] | None:
    """Parse ``--input-shape``: either ``1x3xHxW`` (the only input) or ``name:1x3xHxW[;name:...]``."""
    if not text:
        return None
    if ":" not in text:
        return parse_shape(text)
    shapes: dict[str, tuple[int, ...]] = {}
    for item in text.split(";"):
        name, _, dims = item.partition(":")
        if not name.strip():
            raise UserError(f"--input-shape {text!r}: an entry has no input name before ':'")
        shapes[name.strip()] = parse_shape(dims)
    return shapes


def format_shape(shape) -> str:
    return "x".join(str(d) for d in shape)
