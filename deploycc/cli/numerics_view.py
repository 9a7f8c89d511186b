"""The numerics table of ``build`` and ``verify``: each row says what was compared with what, on
which input, each figure stands beside the limit it was held to, and segmentation outputs show
how often the class (argmax) agrees."""

from __future__ import annotations

from deploycc.cli.output import table

COLUMNS = ["against", "input", "output", "max abs (allowed)", "cosine (min)", "argmax agreement (min)", "verdict"]

# The reference texts the build records (pipeline._verify) and the short names people read.
_REFERENCES = {
    "original model": "FP32 model",
    "original FP32 model": "FP32 model",
    "the Q/DQ model": "Q/DQ model",
}


def against(reference: str) -> str:
    """``onnxruntime, graph optimizations disabled, the Q/DQ model`` as ``Q/DQ model``."""
    what = reference.rsplit(", ", 1)[-1]
    return _REFERENCES.get(what, what)


def _max_abs(o: dict, rtol: float) -> str:
    allowed = f"≤ {o['allowed_abs']:.3g}" + (f" + {rtol:g}·|ref|" if rtol else "")
    return f"{o['max_abs']:.3g} ({allowed})"


def _cosine(value: float, minimum: float) -> str:
    return f"{value:.6f}" + (f" (≥ {minimum:g})" if minimum else "")


def _agreement(value: float | None, minimum: float) -> str:
    if value is None:
        return "— (not a class map)"
    return f"{100 * value:.2f} %" + (f" (≥ {100 * minimum:g} %)" if minimum else "")


def output_rows(outputs: list[dict], tol: dict, against_what: str, inputs: list[str], gated: bool = True) -> list:
    """One row per (input, output): ``outputs`` hold every output of the first input, then the next."""
    names = list(dict.fromkeys(o["output"] for o in outputs))
    rows = []
    for i, o in enumerate(outputs):
        verdict = ("passed" if o["ok"] else "[red]FAILED[/]") if gated else "reported, not gated"
        rows.append(
            [
                against_what,
                inputs[i // len(names)] if i // len(names) < len(inputs) else "",
                o["output"],
                _max_abs(o, tol.get("rtol", 0.0)),
                _cosine(o["cosine"], tol.get("min_cosine", 0.0)),
                _agreement(o.get("argmax_agreement"), tol.get("min_argmax_agreement", 0.0)),
                verdict,
            ]
        )
    return rows


def build_numerics_table(v: dict):
    """The build's numerics (``manifest["verification"]``): the artifact (or its proxy) against its
    reference on each verification input, and for INT8 the floor against the FP32 model."""
    outputs = v.get("outputs", [])
    names = list(dict.fromkeys(o["output"] for o in outputs)) or [""]
    n_inputs = max(1, len(outputs) // len(names))
    source = v.get("inputs", "")
    inputs = [f"image {k + 1} of {n_inputs}" for k in range(n_inputs)] if n_inputs > 1 else [_short(source)]
    rows = output_rows(outputs, v.get("tolerance", {}), against(v.get("reference", "")), inputs)
    floor = v.get("fp32_floor")
    if floor:
        rows.append(
            [
                against(floor["reference"]),
                f"all {n_inputs} images (worst)",
                ", ".join(n for n in names if n),
                "—",
                _cosine(floor["cosine_min"], floor["min_cosine"]),
                _agreement(floor.get("argmax_agreement_min"), 0.0),
                "passed" if floor["ok"] else "[red]FAILED[/]",
            ]
        )
    return table("numerics", COLUMNS, rows)


def build_numerics_notes(v: dict) -> list[str]:
    """The lines under the build's numerics table: the inputs, and what the FP32 row is."""
    notes = [
        f"checked: {v.get('subject') or 'the artifact'}, against references run on ONNX Runtime (optimizations off)"
    ]
    notes += [f"inputs: {v['inputs']}"] if v.get("inputs") else []
    if v.get("fp32_floor"):
        notes.append(
            "FP32 model row: a floor only broken calibration falls under; what INT8 costs in mIoU is "
            "gated by --max-miou-drop (build, verify)"
        )
        rescale = v["fp32_floor"].get("rescale")
        if rescale:
            notes.append(
                f"ranges x0.5 / x2: {rescale['gain']:+.2f} agreement-mIoU points against the ranges in use "
                f'(allowed {rescale["max_gain"]:g}: {rescale.get("ranges", "")}; docs/targets.md, "The INT8 floor")'
            )
    return notes


def _short(source: str) -> str:
    """``standard normal, seed 0`` as ``seed 0`` (the title says the rest)."""
    return source.rsplit(", ", 1)[-1] if source else ""
