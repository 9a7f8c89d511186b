"""Targets as data: one TOML file per target in this folder (or a user's own file anywhere).

A target file names its backend (``tvm``, ``ort``, ...), its precision, its default pass list, its
hardware figures (peak ops/s per precision, DRAM bandwidth, on-chip memory), its legality rules
and its backend settings (docs/targets.md). ``load_target`` validates it and returns a
:class:`Target`, which answers the figures passes and reports need.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from deploycc.core.errors import UserError

TARGET_DIR = Path(__file__).resolve().parent
_KNOWN_KEYS = {
    "name",
    "description",
    "backend",
    "precision",
    "passes",
    "hardware",
    "legality",
    "verify",
    "tvm",
    "ort",
    "tensorrt",
    "quantize",
    "device",
}
_REQUIRED = ("name", "backend", "precision")
ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class HardwareFigures:
    """What a pass's cost model needs of a target, every figure filled in."""

    peak_ops: float  # ops/s at the target's precision (a MAC is two ops)
    dram_bandwidth: float  # bytes/s
    onchip_memory: int  # bytes
    bytes_per_element: int | None  # of an activation at the target's precision; None: the tensor's dtype

    @property
    def mac_rate(self) -> float:
        return self.peak_ops / 2


# The cpu target's figures (cpu.toml): what a pass assumes when it runs without a target
# (``deploycc optimize`` without --target) or when its target leaves a figure out.
FALLBACK_FIGURES = HardwareFigures(peak_ops=195e9, dram_bandwidth=25e9, onchip_memory=1 << 20, bytes_per_element=None)


@dataclass(frozen=True)
class Target:
    name: str
    backend: str
    precision: str
    description: str = ""
    passes: tuple[str, ...] = ()
    hardware: dict = field(default_factory=dict)
    legality: dict = field(default_factory=dict)
    verify: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # backend sections: tvm, ort, tensorrt, quantize, device
    source: str = ""

    def peak_ops(self) -> float | None:
        """Peak ops/s at the target's own precision, as its file states it (None: not stated)."""
        peak = (self.hardware.get("peak_ops") or {}).get(self.precision)
        return float(peak) if peak else None

    def dram_bandwidth(self) -> float | None:
        bandwidth = self.hardware.get("dram_bandwidth")
        return float(bandwidth) if bandwidth else None

    def onchip_memory(self) -> int | None:
        memory = self.hardware.get("onchip_memory")
        return int(memory) if memory else None

    def bytes_per_element(self) -> int | None:
        """Bytes an activation takes at the target's precision (int8 targets move 1 byte a value)."""
        return ELEMENT_BYTES.get(self.precision)

    def figures(self) -> HardwareFigures:
        """The stated figures, each missing one taken from :data:`FALLBACK_FIGURES`."""
        return HardwareFigures(
            self.peak_ops() or FALLBACK_FIGURES.peak_ops,
            self.dram_bandwidth() or FALLBACK_FIGURES.dram_bandwidth,
            self.onchip_memory() or FALLBACK_FIGURES.onchip_memory,
            self.bytes_per_element(),
        )

    def ops_per_byte(self) -> float | None:
        """Compute-to-bandwidth ratio at the target's own precision (the roofline ridge point)."""
        peak, bandwidth = self.peak_ops(), self.dram_bandwidth()
        return peak / bandwidth if peak and bandwidth else None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "backend": self.backend,
            "precision": self.precision,
            "description": self.description,
            "passes": list(self.passes),
            "hardware": self.hardware,
            "legality": self.legality,
            "verify": self.verify,
            "settings": self.settings,
            "source": self.source,
        }


def target_files() -> list[Path]:
    return sorted(TARGET_DIR.glob("*.toml"))


def list_targets() -> list[Target]:
    return [load_target(p) for p in target_files()]


def load_target(name_or_path: str | Path) -> Target:
    """The target named ``name_or_path`` (a file in this folder) or read from that TOML path."""
    path = _locate(str(name_or_path))
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"target file {path}: not valid TOML ({exc})") from None
    return _parse(data, path)


def _locate(name: str) -> Path:
    candidate = Path(name)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise UserError(f"target file {candidate}: no such file")
        return candidate
    path = TARGET_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in target_files())
        raise UserError(f"unknown target {name!r}; known targets: {known} (or give a .toml file)")
    return path


def _parse(data: dict, path: Path) -> Target:
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise UserError(f"target file {path}: unknown key(s) {sorted(unknown)}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise UserError(f"target file {path}: missing key(s) {missing}")
    passes = data.get("passes", [])
    if not isinstance(passes, list) or not all(isinstance(p, str) for p in passes):
        raise UserError(f"target file {path}: 'passes' must be a list of pass names")
    settings = {k: data[k] for k in ("tvm", "ort", "tensorrt", "quantize", "device") if k in data}
    return Target(
        name=str(data["name"]),
        backend=str(data["backend"]),
        precision=str(data["precision"]),
        description=str(data.get("description", "")),
        passes=tuple(passes),
        hardware=dict(data.get("hardware", {})),
        legality=dict(data.get("legality", {})),
        verify=dict(data.get("verify", {})),
        settings=settings,
        source=str(path),
    )


def figures_for(target: Target | None) -> HardwareFigures:
    """The cost-model figures of ``target``, or the fallback ones when there is no target."""
    return target.figures() if target is not None else FALLBACK_FIGURES
