"""The latency gate: an artifact's measured latency against its LUT prediction.

``latency_check(artifact, lut_path, max_error_pct)`` reads the artifact's manifest (its target,
toolchain and the architecture it was built from, recorded by ``deploycc build`` for
architecture sources; ``arch`` overrides it), refuses a LUT made for another target or toolchain
unless mismatches are allowed, predicts with the LUT, times the artifact with the protocol at the
LUT's thread count, and returns the figures with ``ok`` = |error| <= max_error_pct (always true
when no limit is given: the figures alone).
:func:`enforce` turns a failed check into ``GateFailed`` (exit 1).

Anchored (``anchor``; by default when the LUT was built anchored): the artifact is timed as its
ratio to the LUT's anchor network, built here for the LUT's target and run in the same interleaved
rounds (``verify/ratio.py``, the rounds of ``lut validate``), and its measured time is that ratio
x the LUT's anchor median (an unanchored LUT: x the anchor's median in this run), so a machine that
runs slower today than during the build does not fail the gate. Only one of the two anchored: the
figures are compared with a warning (``anchored.mixing_warning``).
"""

from __future__ import annotations

from pathlib import Path

from deploycc.core.errors import GateFailed, UserError
from deploycc.pipeline.artifact import read_manifest
from deploycc.verify.measure import machine_facts, time_artifact

from .anchored import anchor_job, lut_anchor, mixing_warning, on_lut_scale, speed_change_pct
from .measure_arch import arch_protocol
from .predict import Predictor
from .table import check_compatible, load_lut


class _ManifestTarget:
    """The artifact's target as recorded in its manifest (name + definition)."""

    def __init__(self, d: dict):
        self.name, self._d = d.get("name"), d

    def to_dict(self) -> dict:
        return self._d


def artifact_arch(manifest: dict, artifact: Path, arch: str | None):
    from deploycc.models import parse_arch, resolve_arch

    if arch:
        return resolve_arch(arch)
    recorded = manifest.get("architecture")
    if not recorded:
        raise UserError(
            f"{artifact}: the manifest records no architecture (built from a plain ONNX file?); "
            "give it with --arch ARCH.json"
        )
    return parse_arch(recorded, source=f"{artifact} manifest")


def latency_check(
    artifact,
    lut_path,
    max_error_pct: float | None,
    allow_mismatch: bool = False,
    arch: str | None = None,
    protocol=None,
    anchor: bool | None = None,
) -> dict:
    if max_error_pct is not None and not max_error_pct > 0:
        raise UserError(f"--max-latency-error {max_error_pct:g}: give a positive percentage (e.g. 10)")
    artifact = Path(artifact)
    manifest = read_manifest(artifact)
    lut = load_lut(lut_path)
    emulated = ((lut.machine or {}).get("fleet") or {}).get("emulated")
    if emulated:
        raise UserError(
            f"{lut_path}: this LUT was measured under emulation ({', '.join(emulated)}); emulated "
            "latency is not a device figure and gates nothing: build the LUT on the device"
        )
    backend_tools = {
        k: v
        for k, v in manifest.get("toolchain", {}).items()
        if k in lut.toolchain and k not in ("deploycc", "onnx", "torch", "python")
    }
    allowed = check_compatible(lut, _ManifestTarget(manifest["target"]), backend_tools, allow_mismatch)
    architecture = artifact_arch(manifest, artifact, arch)
    predictor = Predictor(lut)
    predicted = predictor.predict_arch(architecture)
    anchored = bool(lut.anchoring) if anchor is None else anchor
    protocol = protocol or arch_protocol(lut)
    if anchored:
        measured, latency, anchoring = time_against_anchor(artifact, lut, predictor, protocol)
    else:
        _, timed = time_artifact(artifact, protocol, lut.threads)
        measured, latency, anchoring = timed.stat(lut.statistic), timed.to_dict(), {"anchored": False}
    anchoring["warning"] = mixing_warning(lut, anchored, "this measurement")
    error = 100.0 * (predicted - measured) / measured
    return {
        "gate": "max-latency-error",
        "artifact": str(artifact),
        "lut": str(lut_path),
        "architecture": architecture.name,
        "predicted_ms": predicted,
        "measured_ms": measured,
        "statistic": lut.statistic,
        "threads": lut.threads,
        "error_pct": error,
        "limit_pct": max_error_pct,
        "ok": max_error_pct is None or abs(error) <= max_error_pct,
        "mismatch_allowed": allowed,
        "latency": latency,
        "anchoring": anchoring,
        "warnings": [anchoring["warning"]] if anchoring["warning"] else [],
        "machine": machine_facts(),
    }


def time_against_anchor(artifact: Path, lut, predictor: Predictor, protocol) -> tuple[float, dict, dict]:
    """(measured ms, the artifact's own latency figures, anchoring record) of ``artifact`` timed as
    its ratio to the LUT's anchor network in interleaved rounds (see the module doc)."""
    import tempfile

    import numpy as np

    from deploycc.verify.ratio import RatioRule

    from .timer import LocalTimer, build_job

    genotype = lut_anchor(lut)
    job = anchor_job(predictor.arch_of(genotype, name="anchor"), lut.target, lut.toolchain, lut.threads)
    timer = LocalTimer()
    timer.anchor_on(job, RatioRule())
    with tempfile.TemporaryDirectory(prefix="deploycc-check-anchor-") as tmp:
        built = build_job(job, Path(tmp))
        (head, subject), load = timer.time_built([built, (artifact, 0.0)], protocol, lut.threads, "lut check")
    run_median = float(np.median(head["anchor"]["round_ms"]))
    ratio = subject["ratio"]
    scale = "lut" if lut.anchoring else "run"
    measured = on_lut_scale(lut, ratio["ratio"]) if scale == "lut" else ratio["ratio"] * run_median
    return (
        measured,
        subject["latency"],
        {
            "anchored": True,
            "anchor": {"genotype": genotype, "median_ms": run_median},
            "ratio": ratio,
            "rule": RatioRule().to_dict(),
            "scale": scale,
            "speed_change_pct": speed_change_pct(lut, run_median),
            "load": load,
        },
    )


def failure_line(result: dict) -> str:
    return (
        f"latency gate failed for {result['artifact']}: measured {result['measured_ms']:.2f} ms "
        f"({result['statistic']}), LUT predicts {result['predicted_ms']:.2f} ms, error "
        f"{result['error_pct']:+.1f} % exceeds ±{result['limit_pct']:g} %"
    )


def enforce(result: dict) -> None:
    if not result["ok"]:
        raise GateFailed(failure_line(result))
