"""The project file of ``deploycc ci`` (``deploycc.toml``): models, targets, data, LUTs and gates.

Reading is strict: an unknown key anywhere, a value of the wrong type, a file that does not
exist, an unknown target, a gate out of range or a gate without what it needs (an mIoU gate
without validation data, a LUT gate without a LUT) is one ``UserError`` naming the file and the
key (exit 2), before anything is built. Paths are relative to the project file's folder.

See the example ``deploycc.toml`` at the repository root for every key, with comments.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from deploycc.core.errors import UserError
from deploycc.verify.measure import Protocol

_TOP = {"project", "targets", "models", "data", "lut", "gates", "timing", "waivers"}
_PROJECT = {"name", "output", "cache", "threads", "seed"}
_MODEL = {"name", "source", "weights", "input_shape", "targets"}
_DATA = {"validation", "calibration", "split", "max_images", "calib_method", "calib_images"}
_SYNTH = {"n", "size", "seed"}
GATES = ("min_miou", "max_miou_drop", "max_latency_error_pct", "max_latency_ms")  # as the checks read them
# What a person writes: mIoU in percent and its drop in points, as on the command line
# (``verify --min-miou 60 --max-miou-drop 0.5``). The checks compare fractions, so these are divided
# by 100 when read; the fraction keys of earlier project files (``min_miou = 0.60``) are still read,
# with a deprecation note.
PERCENT_KEYS = {"min_miou_pct": "min_miou", "max_miou_drop_points": "max_miou_drop"}
FRACTION_KEYS = {fraction: percent for percent, fraction in PERCENT_KEYS.items()}
_WAIVER = {"pair", "gate", "reason"}
# Every gate a pair's record can carry (``deploycc.ci.checks``); a waiver names one of them.
GATE_NAMES = ("build", "numerics", "min-miou", "max-miou-drop", "max-latency-error", "max-latency")
_TIMING = {"warmup", "min_repeats", "max_repeats", "max_seconds", "rel_tol", "window"}


@dataclass(frozen=True)
class DataSource:
    """A folder of images, or procedural scenes (``synth``) generated into the build cache."""

    path: Path | None = None
    synth: dict | None = None  # {n, size: (H, W), seed}

    def describe(self) -> str:
        if self.path is not None:
            return str(self.path)
        s = self.synth
        assert s is not None, "a DataSource has a path or a synth recipe"
        return f"synthetic scenes n={s['n']} size={s['size'][0]}x{s['size'][1]} seed={s['seed']}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # ONNX file, architecture .json (resolved paths) or zoo name
    weights: Path | None = None
    input_shape: tuple | None = None
    targets: tuple[str, ...] | None = None


@dataclass
class Config:
    path: Path
    name: str
    output: Path
    cache: Path
    targets: tuple[str, ...]
    models: list[ModelSpec]
    validation: DataSource | None = None
    calibration: DataSource | None = None
    split: str | None = None
    max_images: int | None = None
    calib_method: str | None = None
    calib_images: int | None = None
    luts: dict = field(default_factory=dict)  # target name -> LUT path
    gates: dict = field(default_factory=dict)  # gate -> limit
    target_gates: dict = field(default_factory=dict)  # target -> {gate -> limit}
    threads: int = 1
    seed: int = 0
    protocol: Protocol = Protocol()
    waivers: list = field(default_factory=list)  # [{pair, gate, reason}]
    notes: list = field(default_factory=list)  # deprecation lines, printed by the command

    def waiver(self, pair: str, gate: str) -> dict | None:
        """The project file's waiver of ``gate`` for ``pair``, or None."""
        return next((w for w in self.waivers if w["pair"] == pair and w["gate"] == gate), None)

    def pairs(self) -> list[tuple[ModelSpec, str]]:
        return [(m, t) for m in self.models for t in (m.targets or self.targets)]

    def gates_for(self, target: str) -> dict:
        return {**self.gates, **self.target_gates.get(target, {})}


# the upper end of every count of a project file: what one CI run can use (a data set of
# 100 000 scenes of 8192 x 8192 at most, a day of timing per pair); each is checked, none is silent
MAXIMA = {
    "threads": 1024,
    "seed": 2**63 - 1,
    "n": 100_000,
    "max_images": 10_000_000,
    "calib_images": 100_000,
    "side": 8192,
    "pixels": 1 << 26,
    "max_seconds": 86_400.0,
    "rel_tol": 1.0,
}


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such project file (write a deploycc.toml; see the example in the repository)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    return _Reader(path).config(data)


class _Reader:
    def __init__(self, path: Path):
        self.path, self.root = path, path.resolve().parent
        self.notes: list[str] = []

    def fail(self, where: str, what: str) -> NoReturn:
        raise UserError(f"{self.path}: {where}: {what}")

    def keys(self, table, allowed: set, where: str) -> dict:
        if not isinstance(table, dict):
            self.fail(where, f"must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(where, f"unknown key(s) {unknown} (allowed: {', '.join(sorted(allowed))})")
        return table

    def typed(self, value, kind, where: str):
        ok = isinstance(value, kind) and not (kind in (int, float, (int, float)) and isinstance(value, bool))
        if not ok:
            name = {int: "an integer", str: "a string", dict: "a table"}.get(kind, "a number")
            self.fail(where, f"must be {name}, got {value!r}")
        return value

    def file(self, value, where: str, must_exist: bool = True) -> Path:
        p = Path(self.typed(value, str, where))
        p = p if p.is_absolute() else self.root / p
        if must_exist and not p.exists():
            self.fail(where, f"no such file or folder {p}")
        return p

    def config(self, data: dict) -> Config:
        self.keys(data, _TOP, "top level")
        project = self.keys(data.get("project", {}), _PROJECT, "project")
        targets = self.targets(data.get("targets"), "targets")
        models = self.models(data.get("models"))
        for m in models:
            for t in m.targets or ():
                if t not in targets:
                    self.fail(f"model {m.name!r} targets", f"{t!r} is not in the top-level targets {list(targets)}")
        cfg = Config(
            path=self.path,
            name=str(project.get("name", self.root.name)),
            output=self.file(project.get("output", "build/ci"), "project.output", False),
            cache=self.file(project.get("cache", ".deploycc-cache/ci"), "project.cache", False),
            targets=targets,
            models=models,
            threads=self.count(project.get("threads", 1), "project.threads", minimum=0),
            seed=self.count(project.get("seed", 0), "project.seed", minimum=0),
        )
        self.data(cfg, self.keys(data.get("data", {}), _DATA, "data"))
        cfg.luts = self.luts(data.get("lut", {}), targets)
        cfg.gates, cfg.target_gates = self.gates(data.get("gates", {}), targets)
        cfg.protocol = self.timing(self.keys(data.get("timing", {}), _TIMING, "timing"))
        cfg.waivers = self.waivers(data.get("waivers", []), cfg)
        self.check_gate_needs(cfg)
        cfg.notes = self.notes
        return cfg

    def targets(self, value, where: str) -> tuple[str, ...]:
        from deploycc.targets import load_target

        if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
            self.fail(where, 'give a non-empty list of target names, e.g. ["cpu", "cpu-ort"]')
        for t in value:
            try:
                load_target(t if not t.endswith(".toml") else str(self.file(t, where)))
            except UserError as exc:
                self.fail(where, str(exc))
        return tuple(value)

    def models(self, value) -> list[ModelSpec]:
        if not isinstance(value, list) or not value:
            self.fail("models", "give at least one model (name, source)")
        out, names = [], set()
        for i, m in enumerate(value):
            where = f"models #{i + 1}"
            self.keys(m, _MODEL, where)
            if "source" not in m:
                self.fail(where, "missing key 'source' (ONNX file, architecture .json or zoo name)")
            source = self.source(m["source"], f"{where}.source")
            name = self.typed(m.get("name", Path(source).stem), str, f"{where}.name")
            if name in names or not name or "@" in name:
                self.fail(f"{where}.name", f"{name!r} is empty, repeated or contains '@'")
            names.add(name)
            weights = self.file(m["weights"], f"{where}.weights") if "weights" in m else None
            shape = self.shape(m["input_shape"], f"{where}.input_shape") if "input_shape" in m else None
            targets = self.targets(m["targets"], f"{where}.targets") if "targets" in m else None
            self.check_architecture(source, shape, weights, where)
            out.append(ModelSpec(name, source, weights, shape, targets))
        return out

    def check_architecture(self, source: str, shape, weights, where: str) -> None:
        """An architecture source must parse, and take ``input_shape`` if one is given."""
        from deploycc.pipeline.sources import is_architecture

        if not is_architecture(source):
            if weights is not None:
                self.fail(f"{where}.weights", "applies to architecture sources only; an ONNX model carries its weights")
            return
        from deploycc.models import resolve_arch

        try:
            arch = resolve_arch(source)
            if shape is not None:
                arch.with_input_shape(shape)
        except UserError as exc:
            self.fail(f"{where}.source", str(exc))

    def source(self, value, where: str) -> str:
        from deploycc.models import zoo_names

        text = self.typed(value, str, where)
        if text in zoo_names() and not (self.root / text).exists():
            return text
        return str(self.file(text, where))

    def shape(self, value, where: str) -> tuple:
        from deploycc.core.shapes import parse_shape

        try:
            return tuple(parse_shape(self.typed(value, str, where), where))
        except UserError as exc:
            self.fail(where, str(exc))

    def count(self, value, where: str, minimum: int = 1, maximum: int | None = None) -> int:
        value = self.typed(value, int, where)
        limit = MAXIMA.get(where.rsplit(".", 1)[-1], 2**31 - 1) if maximum is None else maximum
        if not minimum <= value <= limit:
            self.fail(where, f"must be between {minimum} and {limit}, got {value}")
        return value

    def data_source(self, value, where: str) -> DataSource:
        if isinstance(value, str):
            return DataSource(path=self.file(value, where))
        synth = self.keys(self.keys(value, {"synth"}, where).get("synth"), _SYNTH, f"{where}.synth")
        missing = sorted(_SYNTH - set(synth))
        if missing:
            self.fail(f"{where}.synth", f"missing key(s) {missing}")
        size = self.shape(synth["size"], f"{where}.synth.size")
        if len(size) != 2:
            self.fail(f"{where}.synth.size", 'give H x W, e.g. "64x128"')
        if not all(1 <= d <= MAXIMA["side"] for d in size) or size[0] * size[1] > MAXIMA["pixels"]:
            self.fail(
                f"{where}.synth.size",
                f"each side must be 1..{MAXIMA['side']} and H x W at most {MAXIMA['pixels']} pixels",
            )
        return DataSource(
            synth={
                "n": self.count(synth["n"], f"{where}.synth.n"),
                "size": size,
                "seed": self.count(synth["seed"], f"{where}.synth.seed", minimum=0),
            }
        )

    def data(self, cfg: Config, data: dict) -> None:
        if "validation" in data:
            cfg.validation = self.data_source(data["validation"], "data.validation")
        if "calibration" in data:
            cfg.calibration = self.data_source(data["calibration"], "data.calibration")
        if "split" in data:
            cfg.split = self.typed(data["split"], str, "data.split")
        if "max_images" in data:
            cfg.max_images = self.count(data["max_images"], "data.max_images")
        if "calib_method" in data:
            cfg.calib_method = self.typed(data["calib_method"], str, "data.calib_method")
        if "calib_images" in data:
            cfg.calib_images = self.count(data["calib_images"], "data.calib_images")

    def luts(self, table, targets) -> dict:
        from deploycc.lut import load_lut

        self.keys(table, set(targets), "lut")
        out = {}
        for target, value in table.items():
            path = self.file(value, f"lut.{target}")
            try:
                load_lut(path)
            except UserError as exc:
                self.fail(f"lut.{target}", str(exc))
            out[target] = path
        return out

    def gates(self, table, targets) -> tuple[dict, dict]:
        gates = self.gate_limits({k: v for k, v in table.items() if k != "target"}, "gates")
        per = {}
        for target, sub in self.keys(table.get("target", {}), set(targets), "gates.target").items():
            per[target] = self.gate_limits(sub, f"gates.target.{target}")
        return gates, per

    def gate_limits(self, table, where: str) -> dict:
        """{gate as the checks name it: limit}; mIoU limits as fractions, whichever key gave them."""
        keys = [k for k in GATES if k not in FRACTION_KEYS] + list(PERCENT_KEYS) + list(FRACTION_KEYS)
        self.keys(table, set(keys), where)
        out = {}
        for key in sorted(table, key=keys.index):
            gate = PERCENT_KEYS.get(key, key)
            if gate in out:
                self.fail(f"{where}.{key}", f"sets the same gate as {FRACTION_KEYS[gate]}; keep {FRACTION_KEYS[gate]}")
            out[gate] = self.limit(key, table[key], f"{where}.{key}")
        return out

    def limit(self, key: str, value, where: str) -> float:
        value = float(self.typed(value, (int, float), where))
        if key in PERCENT_KEYS and not 0.0 <= value <= 100.0:
            self.fail(where, f"{value:g}: give percent (mIoU) or points (its drop) in [0, 100], e.g. 60 or 0.5")
        if key == "min_miou_pct" and 0.0 < value < 1.0:
            self.fail(where, f"{value:g} is in percent: {value:g} % is no gate; for 60 % write {key} = 60")
        if key in PERCENT_KEYS:
            return value / 100.0
        if key in FRACTION_KEYS:
            return self.fraction(key, value, where)
        if not value > 0:
            self.fail(where, f"{value:g}: must be positive")
        return value

    def fraction(self, key: str, value: float, where: str) -> float:
        """A limit in the fraction keys of earlier project files: read, with the line that updates it."""
        if not 0.0 <= value <= 1.0:
            self.fail(where, f"{value:g}: this key takes a fraction; write {FRACTION_KEYS[key]} = {value:g} instead")
        self.notes.append(
            f"{self.path}: {where} = {value:g} is a fraction (deprecated): write {FRACTION_KEYS[key]} = "
            f"{100 * value:.4g} ({'percent' if key == 'min_miou' else 'mIoU points'}, as on the command line)"
        )
        return value

    def waivers(self, value, cfg: Config) -> list[dict]:
        """``[[waivers]]``: pair (MODEL@TARGET), gate, reason; each must name a real pair and gate."""
        if not isinstance(value, list):
            self.fail("waivers", "write each waiver as a [[waivers]] table with pair, gate and reason")
        pairs = {f"{m.name}@{t}" for m, t in cfg.pairs()}
        out: list[dict] = []
        for i, w in enumerate(value):
            where = f"waivers #{i + 1}"
            self.keys(w, _WAIVER, where)
            missing = sorted(_WAIVER - set(w))
            if missing:
                self.fail(where, f"missing key(s) {missing} (a waiver names the pair, the gate and why)")
            pair, gate, reason = (self.typed(w[k], str, f"{where}.{k}") for k in ("pair", "gate", "reason"))
            if pair not in pairs:
                self.fail(
                    f"{where}.pair", f"{pair!r} is not a pair of this project (pairs: {', '.join(sorted(pairs))})"
                )
            if gate not in GATE_NAMES:
                self.fail(f"{where}.gate", f"{gate!r} is not a gate (gates: {', '.join(GATE_NAMES)})")
            if not reason.strip():
                self.fail(f"{where}.reason", "say why the gate is waived (it is printed in every report)")
            if any(o["pair"] == pair and o["gate"] == gate for o in out):
                self.fail(where, f"{pair} {gate} is waived twice")
            out.append({"pair": pair, "gate": gate, "reason": reason.strip()})
        return out

    def timing(self, table: dict) -> Protocol:
        values = {}
        for k, v in table.items():
            kind = (int, float) if k in ("max_seconds", "rel_tol") else int
            values[k] = self.typed(v, kind, f"timing.{k}")
            if values[k] <= 0 and k != "warmup":
                self.fail(f"timing.{k}", "must be positive")
            if not math.isfinite(values[k]) or values[k] < 0 or values[k] > MAXIMA.get(k, 1e6):
                self.fail(f"timing.{k}", f"must be between 0 and {MAXIMA.get(k, 1e6):g}, got {values[k]!r}")
        return Protocol(**values)

    def check_gate_needs(self, cfg: Config) -> None:
        for target in cfg.targets:
            gates = cfg.gates_for(target)
            scope = f"gates (target {target})"
            if ("min_miou" in gates or "max_miou_drop" in gates) and cfg.validation is None:
                self.fail(scope, "an mIoU gate needs validation data: add data.validation")
            if "max_latency_error_pct" in gates and target not in cfg.luts:
                self.fail(scope, f"max_latency_error_pct needs a LUT for {target}: add lut.{target}")
