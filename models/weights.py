"""Strict loading of trained state dicts: every key and shape must match, else a UserError."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from deploycc.core.errors import UserError, first_line

_SHOW = 5


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a .pth state dict (weights_only); a missing/corrupt/non-dict file is a UserError."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: weights file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sd = torch.load(p, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
    ) as e:
        first = first_line(e)
        raise UserError(f"{p}: not a readable PyTorch state dict ({first[:160]})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise UserError(f"{p}: not a state dict (expected a mapping of names to tensors)")
    return sd


def _fmt(keys, shapes=None) -> str:
    keys = sorted(keys)
    shown = [f"{k} {tuple(shapes[k].shape)}" if shapes else k for k in keys[:_SHOW]]
    more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(shown) + more


def state_dict_problems(module: nn.Module, sd: dict[str, torch.Tensor]) -> list[str]:
    """Human-readable differences between a module's state dict and ``sd`` (empty: match)."""
    own = module.state_dict()
    missing, unexpected = set(own) - set(sd), set(sd) - set(own)
    mismatched = [k for k in sorted(set(own) & set(sd)) if tuple(own[k].shape) != tuple(sd[k].shape)]
    out = []
    if missing:
        out.append(f"missing {len(missing)} keys: {_fmt(missing, own)}")
    if unexpected:
        out.append(f"unexpected {len(unexpected)} keys: {_fmt(unexpected, sd)}")
    if mismatched:
        out.append(
            f"{len(mismatched)} shape mismatches: "
            + ", ".join(f"{k} file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in mismatched[:_SHOW])
        )
    return out


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Deterministic random init with non-trivial BatchNorm (affine and running statistics), so
    that random-weight numerics exercise BN; returns the module."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                assert m.weight is not None and m.bias is not None, "the zoo's BatchNorms are affine"
                assert m.running_mean is not None and m.running_var is not None, "and track running stats"
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
    return module


def load_weights(module: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load ``path`` into ``module`` strictly (keys and shapes); returns the module."""
    sd = read_state_dict(path)
    problems = state_dict_problems(module, sd)
    if problems:
        raise UserError(f"{path}: weights do not match the architecture: " + "; ".join(problems))
    module.load_state_dict(sd, strict=True)
    return module
