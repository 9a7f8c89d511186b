"""The LUT file: a versioned, checksummed JSON table of per-entry latency statistics.

A LUT describes one search space at one input shape on one target: the stem entry, the head
entry, and for every searchable layer the entry key of each legal candidate unit (layers with the
same channels, stride and input size share entries). Each entry holds the full latency
statistics of the protocol (median, p90, p99, min, ...). The file also records the target (name,
backend and a hash of its definition), the toolchain versions, the thread count, the timing
protocol, the statistic the predictor sums, and the machine it was measured on.

Reading is strict: a truncated or corrupt file, an unknown format or version, a checksum that
does not match, or a missing field is one ``UserError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from deploycc.core.errors import UserError
from deploycc.core.outputs import write_output_bytes

FORMAT, VERSION = "deploycc-lut", 1
# An in-context LUT (``lut/context.py``) is written as version 2, so that a reader that knows only
# version 1 refuses it instead of summing its full-network entries as if they were units.
CONTEXT_VERSION = 2
MODES = ("isolated", "in-context", "profiled")
_REQUIRED = (
    "space",
    "backbone",
    "head",
    "num_classes",
    "input_shape",
    "target",
    "toolchain",
    "threads",
    "statistic",
    "protocol",
    "stem",
    "head_entry",
    "layers",
    "entries",
)


@dataclass
class LUT:
    space: str
    backbone: str | None
    head: str | None
    num_classes: int
    input_shape: tuple[int, ...]
    target: dict  # name, backend, sha256 of the target definition
    toolchain: dict  # backend versions + deploycc, onnx, torch
    threads: int
    statistic: str  # which Latency statistic the predictor sums
    protocol: dict
    stem: str  # entry key
    head_entry: str  # entry key
    layers: list[dict]  # index, c_in, c_out, stride, in_h, in_w, candidates{code: key}
    entries: dict[str, dict]  # key -> {kind, code, c_in, c_out, stride, inputs, latency, ...}
    machine: dict = field(default_factory=dict)
    tune_trials: int = 0
    source: str = "<lut>"
    mode: str = "isolated"  # or "in-context": entries are whole networks around a reference
    reference: list | None = None  # in-context: the reference genotype
    anchoring: dict | None = None  # isolated, built with --anchor: rule, anchor network, widths (lut/anchored.py)

    def entry_ms(self, key: str) -> float:
        """The entry's latency under the LUT's statistic (0 for an identity unit). In context: the
        network with that unit minus the reference network (0 for the reference's own unit)."""
        entry = self.entries[key]
        if not entry.get("measured", True):
            return 0.0
        value = float(entry["latency"][f"{self.statistic}_ms"])
        return value - self.reference_ms() if self.mode == "in-context" else value

    def reference_ms(self) -> float:
        """In context: T(reference), the whole reference network (the stem entry)."""
        return float(self.entries[self.stem]["latency"][f"{self.statistic}_ms"])

    def base_ms(self) -> float:
        """What every prediction starts from: stem + head, or T(reference) in context."""
        if self.mode == "in-context":
            return self.reference_ms()
        return self.entry_ms(self.stem) + self.entry_ms(self.head_entry)

    def to_dict(self) -> dict:
        context = self.mode == "in-context"
        d = {"format": FORMAT, "version": CONTEXT_VERSION if context else VERSION}
        for name in (*_REQUIRED, "machine", "tune_trials"):
            value = getattr(self, name)
            d[name] = list(value) if name == "input_shape" else value
        if context:
            d["mode"], d["reference"] = self.mode, list(self.reference or [])
        elif self.mode != "isolated":  # profiled: summed like an isolated LUT, read as one by older readers
            d["mode"] = self.mode
        if self.anchoring is not None:  # written only when anchored: an unanchored LUT's bytes are unchanged
            d["anchoring"] = self.anchoring
        return d


def layer_row(layer, candidates: dict) -> dict:
    """A LUT's row for one searchable layer (``deploycc.models.searchable_layers``): its shape and
    the entry key of each candidate unit."""
    return {
        "index": layer.index,
        "c_in": layer.c_in,
        "c_out": layer.c_out,
        "stride": layer.stride,
        "in_h": layer.in_h,
        "in_w": layer.in_w,
        "candidates": candidates,
    }


def checksum(payload: dict) -> str:
    body = {k: v for k, v in payload.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save_lut(lut: LUT, path: str | os.PathLike) -> Path:
    """Write ``lut`` atomically (temporary file beside it, then rename), with its checksum."""
    path = Path(path)
    payload = lut.to_dict()
    payload["sha256"] = checksum(payload)
    write_output_bytes(path, (json.dumps(payload, indent=1, sort_keys=True) + "\n").encode())
    return path


def lut_problem(path: Path) -> str | None:
    """None when ``path`` is a LUT file deploycc wrote (its checksum holds), else why not: what
    ``lut build -o`` may replace without ``--overwrite``."""
    try:
        load_lut(path)
    except UserError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return None


def load_lut(path: str | os.PathLike) -> LUT:
    """Read and validate a LUT file; every problem is one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: LUT file not found")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not a readable LUT (truncated or corrupt JSON at line {exc.lineno}, column {exc.colno})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the LUT file ({exc.__class__.__name__})") from None
    _check_header(payload, path)
    if payload.get("sha256") != checksum(payload):
        raise UserError(
            f"{path}: LUT checksum does not match its contents (corrupt or edited by hand); "
            "rebuild it with `deploycc lut build`"
        )
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        raise UserError(f"{path}: LUT is missing field(s) {', '.join(missing)}")
    lut = LUT(
        **{k: payload[k] for k in _REQUIRED},
        machine=payload.get("machine", {}),
        tune_trials=int(payload.get("tune_trials", 0)),
        source=str(path),
        mode=payload.get("mode", "isolated"),
        reference=payload.get("reference"),
        anchoring=payload.get("anchoring"),
    )
    if (
        lut.mode not in MODES
        or (lut.mode == "in-context") != (payload["version"] == CONTEXT_VERSION)
        or (lut.mode == "in-context" and len(lut.reference or []) != len(lut.layers))
    ):
        raise UserError(
            f"{path}: LUT mode {lut.mode!r} does not fit its version {payload['version']} and reference; rebuild it"
        )
    lut.input_shape = tuple(lut.input_shape)
    _check_references(lut, path)
    _check_anchoring(lut, path)
    return lut


def _check_header(payload, path: Path) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path}: not a deploycc LUT (format is not {FORMAT!r})")
    if payload.get("version") not in (VERSION, CONTEXT_VERSION):
        raise UserError(
            f"{path}: LUT version {payload.get('version')!r} is not supported "
            f"(this deploycc reads versions {VERSION} and {CONTEXT_VERSION}); rebuild it"
        )


def _check_references(lut: LUT, path: Path) -> None:
    keys = [lut.stem, lut.head_entry] + [k for layer in lut.layers for k in layer["candidates"].values()]
    for key in keys:
        entry = lut.entries.get(key)
        if entry is None:
            raise UserError(f"{path}: LUT refers to entry {key!r} that it does not contain")
        if entry.get("measured", True) and f"{lut.statistic}_ms" not in entry.get("latency", {}):
            raise UserError(f"{path}: LUT entry {key!r} has no {lut.statistic} latency")


def _check_anchoring(lut: LUT, path: Path) -> None:
    """Refuse a LUT that sums anchored and unanchored entries: figures taken at different speeds."""
    record = lut.anchoring
    if record is not None and (
        lut.mode != "isolated"
        or not isinstance(record, dict)
        or not isinstance(record.get("anchor"), dict)
        or not record["anchor"].get("median_ms")
        or len(record["anchor"].get("genotype") or []) != len(lut.layers)
    ):
        raise UserError(
            f"{path}: LUT anchoring record does not fit its mode {lut.mode!r} or lacks its anchor network and median"
        )
    timed = [k for k, e in lut.entries.items() if e.get("measured", True)]
    plain = [k for k in timed if not has_ratio(lut.entries[k])] if lut.anchoring else []
    ratios = [k for k in timed if has_ratio(lut.entries[k])] if lut.anchoring is None and lut.mode == "isolated" else []
    if plain or ratios:
        first = (plain or ratios)[0]
        kind = "not anchored in an anchored LUT" if plain else "anchored in a LUT that says it is not"
        raise UserError(
            f"{path}: LUT entry {first!r} is {kind}: it mixes anchored and unanchored figures; rebuild it "
            "with one of --anchor or --no-anchor"
        )


def has_ratio(entry: dict) -> bool:
    """Whether ``entry`` was timed as a ratio to an anchor network (``verify/ratio.py``)."""
    return bool(entry.get("ratio"))


class TargetFacts(Protocol):
    """What comparing a LUT with a target reads: a Target, or one recorded in an artifact's manifest."""

    @property
    def name(self) -> str | None: ...
    def to_dict(self) -> dict: ...


def check_compatible(lut: LUT, target: TargetFacts, versions: dict, allow_mismatch: bool = False) -> list[str]:
    """Differences between the LUT's target/toolchain and ``target``/``versions``.

    Raises a UserError naming the first difference unless ``allow_mismatch``; returns the list
    (empty when everything matches) so that a report can show what was allowed.
    """
    problems = []
    if lut.target.get("name") != target.name:
        problems.append(f"it was measured on target {lut.target.get('name')!r}, not {target.name!r}")
    elif lut.target.get("sha256") != target_digest(target):
        problems.append(f"target {target.name!r} has changed since the LUT was measured")
    for tool, version in sorted(versions.items()):
        if tool in lut.toolchain and lut.toolchain[tool] != version:
            problems.append(f"it was measured with {tool} {lut.toolchain[tool]}, this is {version}")
    if problems and not allow_mismatch:
        raise UserError(f"{lut.source}: LUT does not fit: {problems[0]} (pass --allow-mismatch to use it anyway)")
    return problems


def target_digest(target: TargetFacts) -> str:
    """A short hash of the target's definition (its file may live anywhere: the path is left out)."""
    d = {k: v for k, v in target.to_dict().items() if k != "source"}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
