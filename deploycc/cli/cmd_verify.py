"""``deploycc verify ARTIFACT``: accuracy on labelled data, agreement and numerics vs a reference.

Sections, each computed by a function so that more checks (latency vs a LUT) plug in beside them:

* ``--data DIR``: mIoU, pixel accuracy and per-class IoU over the split (official Cityscapes
  arithmetic, see ``deploycc.core.accuracy``), with the preprocessing recorded in the manifest.
* ``--reference MODEL`` (the FP32 ONNX model, or another artifact folder): with ``--data``, the
  reference's own scores, the mIoU drop and the agreement (pixel agreement, agreement mIoU);
  always, numerics on fixed-seed inputs with the target's tolerance.

Gates ``--min-miou`` (percent) and ``--max-miou-drop`` (points, as ``build --max-miou-drop``); the
JSON scores themselves are fractions in [0, 1] as in ``cityscapesscripts``. Every gate ends
passed or failed (``deploycc.core.verdict``). A gate that does not hold exits 1 after the report is
printed; bad input exits 2; an artifact this machine cannot run (built for another architecture, a
GPU, a phone, or a bundle whose engine is still to be built on the device) is not verified here and
exits 3 with the command that would verify it (``--remote`` for a TVM device).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.markup import escape

from deploycc.cli.numerics_view import COLUMNS, output_rows
from deploycc.cli.options import JSON, check_report_path, overwrite_option, report_option
from deploycc.cli.output import emit, progress_bar, table
from deploycc.cli.reports import write_verify_report
from deploycc.cli.verify_subject import device_step_left, open_for_verify
from deploycc.core.errors import GateFailed, UserError
from deploycc.core.numerics import Tolerance, compare_all, random_feeds
from deploycc.data import open_dataset
from deploycc.pipeline.runtime import open_artifact
from deploycc.verify.evaluate import OnnxReference, artifact_label, evaluate_artifact

app = typer.Typer()  # merged into the root command by deploycc.cli.main


@app.command("verify")
def verify_cmd(
    artifact: Path = typer.Argument(..., help="artifact folder made by `deploycc build`"),
    data: Path | None = typer.Option(
        None, "--data", "-d", help="labelled images: Cityscapes layout or images/ + labels/"
    ),
    split: str | None = typer.Option(None, "--split", help="Cityscapes split to evaluate (default: val)"),
    reference: str | None = typer.Option(
        None, "--reference", "-r", help="FP32 reference: ONNX file or artifact folder"
    ),
    min_miou: float | None = typer.Option(None, "--min-miou", help="gate: mIoU at least this many percent (e.g. 70)"),
    max_miou_drop: float | None = typer.Option(
        None, "--max-miou-drop", help="gate: reference mIoU minus artifact mIoU at most this many points (e.g. 0.5)"
    ),
    max_images: int | None = typer.Option(None, "--max-images", help="evaluate only the first N images"),
    threads: int = typer.Option(0, "--threads", help="runtime threads (0: the artifact's setting)"),
    seed: int = typer.Option(0, "--seed", help="seed of the numerics inputs"),
    remote: str | None = typer.Option(None, "--remote", help="run the artifact on a device: TVM RPC tracker HOST:PORT"),
    key: str | None = typer.Option(None, "--key", help="with --remote: the device key the rpc_servers registered"),
    lut: Path | None = typer.Option(
        None, "--lut", help="latency LUT (`deploycc lut build`): measured latency vs its prediction"
    ),
    max_latency_error: float | None = typer.Option(
        None, "--max-latency-error", help="gate (with --lut): |measured - LUT| at most this many percent"
    ),
    allow_mismatch: bool = typer.Option(
        False, "--allow-mismatch", help="with --lut: accept a LUT made for another target or toolchain version"
    ),
    proxy: bool = typer.Option(
        False, "--proxy", help="a device-only bundle: verify the stand-in its build checked (Q/DQ INT8, FP16 sim) here"
    ),
    report_file: Path | None = report_option("the verification (IoU bars, confusion matrix, samples, gates)"),
    overwrite: bool = overwrite_option("the --report file"),
    as_json: bool = JSON,
):
    """Verify an artifact: mIoU on labelled data, agreement and numerics against its reference."""
    check_report_path(report_file, [artifact, data, reference, lut], overwrite)
    check_options(data, reference, min_miou, max_miou_drop, max_images, lut, max_latency_error, remote)
    manifest, session, subject = open_for_verify(artifact, threads, remote, key, proxy)
    where = artifact_label(artifact, manifest) + (f" through its stand-in: {subject}" if subject else "")
    ref = open_reference(reference, session, threads) if reference else None
    report = {
        "artifact": str(artifact),
        "target": manifest["target"]["name"],
        "backend": manifest["backend"],
        "reference": reference,
    }
    if subject:
        report["proxy"] = subject
    if remote:
        report["remote"] = {"tracker": remote, "key": key, "device": session.device, "device_facts": session.facts}
    if data is not None:
        report.update(accuracy_section(session, manifest, where, data, split, ref, max_images, as_json))
    if ref is not None:
        report["numerics"] = numerics_section(session, manifest, ref, seed, artifact, max_miou_drop)
    if lut is not None:
        from deploycc.lut.gate import latency_check  # latency vs the search-time LUT (deploycc.lut.gate)

        report["latency"] = latency_check(artifact, lut, max_latency_error, allow_mismatch)
    report["gates"] = gates(report, min_miou, max_miou_drop)
    report["ok"] = all(g["ok"] for g in report["gates"])
    report["outcome"] = "passed" if report["ok"] else "failed"
    emit(report, as_json, render)
    if report_file is not None:
        write_verify_report(
            report_file, report, session, manifest, where, data, split, max_images, ref, f"reference {reference}"
        )
    fail_on_gates(report)
    if subject:
        raise device_step_left(artifact, manifest, subject)


def check_options(
    data, reference, min_miou, max_miou_drop, max_images, lut=None, max_latency_error=None, remote=None
) -> None:
    if max_latency_error is not None and lut is None:
        raise UserError(
            "--max-latency-error needs --lut FILE (the LUT whose prediction the latency is checked against)"
        )
    if data is None and reference is None and lut is None:
        raise UserError(
            "nothing to verify: give --data DIR (accuracy), --reference MODEL (numerics) and/or --lut FILE (latency)"
        )
    if lut is not None and remote:
        raise UserError("--lut times the artifact on this machine; it cannot be combined with --remote")
    for name, value in (("--min-miou", min_miou), ("--max-miou-drop", max_miou_drop)):
        if value is not None and not 0.0 <= value <= 100.0:
            raise UserError(
                f"{name} {value:g}: give percent points in [0, 100] (e.g. --min-miou 70, --max-miou-drop 0.5)"
            )
    if min_miou is not None and 0.0 < min_miou < 1.0:
        raise UserError(
            f"--min-miou {min_miou:g} is in percent: {min_miou:g} % is no gate; for 70 % write --min-miou 70"
        )
    if min_miou is not None and data is None:
        raise UserError("--min-miou needs labelled data: give --data DIR")
    if max_miou_drop is not None and (data is None or reference is None):
        raise UserError(
            "--max-miou-drop needs --data DIR and --reference MODEL (the FP32 model the artifact came from)"
        )
    if max_images is not None and max_images < 1:
        raise UserError(f"--max-images {max_images}: must be at least 1")


def open_reference(reference: str, session, threads: int):
    """A Session for the reference: an artifact folder, or an ONNX file on ONNX Runtime."""
    path = Path(reference)
    if path.is_dir():
        return open_artifact(path, threads or None)[1]
    from deploycc.core.loader import load_model

    shape = tuple(session.inputs[0].shape) if len(session.inputs) == 1 else None
    return OnnxReference(load_model(path, shape), threads, path)


def accuracy_section(session, manifest, where, data, split, ref, max_images, quiet) -> dict:
    dataset = open_dataset(data, split).first(max_images)
    ref_where = f"reference {ref.source_path or ''}" if ref is not None else "reference"
    with progress_bar("verify", len(dataset.samples), quiet) as advance:
        result, io, prep, prep_source = evaluate_artifact(session, manifest, dataset, where, ref, ref_where, advance)
    result["timing"]["artifact_ms_per_image"] = 1e3 * result["timing"]["artifact_seconds"] / max(1, result["images"])
    return {
        "data": dataset.describe(),
        "preprocessing": {**prep, "source": prep_source},
        "resolution": {"model_input": list(io.hw), "scored_at": "label resolution (prediction resized nearest)"},
        **result,
    }


def numerics_section(
    session, manifest, ref, seed: int, artifact: Path | None = None, max_miou_drop: float | None = None
) -> dict:
    """Outputs of artifact and reference on fixed-seed inputs, with the target's tolerance.

    A quantized artifact is not gated here: its target's tolerance is written for its own Q/DQ
    model (checked at build time), and what INT8 costs against FP32 is judged on labelled data
    with ``--max-miou-drop``; the figures are still reported.
    """
    tol = Tolerance.of(manifest["target"].get("verify", {}))
    feeds = random_feeds(session.inputs, seed)
    expected = ref.strict_run(feeds)
    stats = compare_all([s.name for s in session.outputs], expected, session.run(feeds), tol)
    quantized = "quantization" in manifest or manifest["target"].get("precision") == "int8"
    ok = all(s.ok for s in stats)
    return {
        **({} if ok else {"layers": _layers(artifact, ref, feeds, tol)}),
        "ok": ok,
        "gated": not quantized,
        "seed": seed,
        "tolerance": dataclasses.asdict(tol),
        "note": _quantized_note(max_miou_drop) if quantized else None,
        "outputs": [s.to_dict() for s in stats],
    }


def _quantized_note(max_miou_drop: float | None) -> str:
    """What gates a quantized artifact, said from the flags actually given."""
    if max_miou_drop is not None:
        return (
            f"quantized artifact: numerics reported, not gated; what INT8 costs is gated by "
            f"--max-miou-drop {max_miou_drop:g} (below)"
        )
    return (
        "quantized artifact: numerics reported, not gated; to gate what INT8 costs, add "
        "--data DIR --max-miou-drop POINTS"
    )


def _layers(artifact: Path | None, ref, feeds: dict, tol: Tolerance) -> dict:
    """Where artifact and reference part: the artifact's own ONNX against the reference ONNX model,
    tensor by tensor (``deploycc.core.layerwise``); not run where either side has no ONNX model."""
    from deploycc.core.layerwise import compare_layers
    from deploycc.core.verdict import not_run

    model = getattr(ref, "model", None)
    onnx_file = None
    if artifact is not None:
        onnx_file = next((artifact / n for n in ("model.qdq.onnx", "model.onnx") if (artifact / n).is_file()), None)
    if model is None or onnx_file is None:
        which = "the reference is an artifact" if model is None else "the artifact holds no ONNX model"
        return not_run(f"no per-layer comparison: {which}", "an ONNX reference and an artifact with model.onnx")
    import onnx

    return compare_layers(
        model, onnx.load(str(onnx_file)), feeds, tol, f"reference {ref.source_path}", f"the artifact's {onnx_file.name}"
    )


def gates(report: dict, min_miou: float | None, max_miou_drop: float | None) -> list[dict]:
    out = []
    if "numerics" in report and report["numerics"]["gated"]:
        out.append(
            {
                "gate": "numerics vs reference",
                "value": None,
                "limit": "target tolerance",
                "ok": report["numerics"]["ok"],
            }
        )
    if min_miou is not None:
        value = _points(report["accuracy"]["miou"])
        out.append(
            {
                "gate": "min-miou",
                "value": value,
                "limit": min_miou,
                "unit": "%",
                "ok": value is not None and value >= min_miou,
            }
        )
    if max_miou_drop is not None:
        value = _points(report.get("miou_drop"))
        out.append(
            {
                "gate": "max-miou-drop",
                "value": value,
                "limit": max_miou_drop,
                "unit": "points",
                "ok": value is not None and value <= max_miou_drop,
            }
        )
    if report.get("latency", {}).get("limit_pct") is not None:
        lat = report["latency"]
        out.append(
            {
                "gate": "max-latency-error",
                "value": lat["error_pct"],
                "limit": lat["limit_pct"],
                "unit": "%",
                "ok": lat["ok"],
            }
        )
    return _with_status(out)


def _with_status(gates: list[dict]) -> list[dict]:
    return [{**g, "status": "passed" if g["ok"] else "failed"} for g in gates]


def _points(fraction: float | None) -> float | None:
    return None if fraction is None else 100.0 * fraction


def fail_on_gates(report: dict) -> None:
    failed = [g for g in report["gates"] if not g["ok"]]
    if failed:
        g = failed[0]
        value = "n/a" if g["value"] is None else f"{g['value']:.2f}"
        where = ""
        if g["gate"] == "numerics vs reference" and report["numerics"].get("layers"):
            from deploycc.core.layerwise import first_bad_line

            where = f"; {first_bad_line(report['numerics']['layers'])}"
        raise GateFailed(
            f"verify {report['artifact']}: gate {g['gate']} failed (value {value}, limit {g['limit']} "
            f"{g.get('unit', '')})".replace(" )", ")")
            + where
        )


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def render(console, d: dict) -> None:
    acc, ref = d.get("accuracy"), d.get("reference_accuracy")
    if acc:
        rows = [[name, _pct(v)] + ([_pct(ref["iou"][name])] if ref else []) for name, v in acc["iou"].items()]
        console.print(
            table(f"IoU %, {d['data']['images']} images", ["class", "artifact"] + (["reference"] if ref else []), rows)
        )
        console.print(
            f"{d['data']['layout']} data {d['data']['path']} ({d['data']['split'] or 'no split'}); "
            f"scored at label resolution"
        )
        console.print(
            f"mIoU [bold]{_pct(acc['miou'])} %[/] over {acc['classes_scored']} classes "
            f"(a class absent from prediction and ground truth is not scored), "
            f"pixel accuracy {_pct(acc['pixel_accuracy'])} %"
        )
    if ref:
        console.print(f"reference mIoU {_pct(ref['miou'])} %, drop {100 * (d['miou_drop'] or 0):.2f} points")
    if d.get("agreement"):
        a = d["agreement"]
        console.print(f"agreement with the reference: pixels {_pct(a['pixel_agreement'])} %, mIoU {_pct(a['miou'])} %")
    if d.get("timing"):
        t = d["timing"]
        console.print(
            f"{t['images_per_second']:.2f} images/s; artifact {t['artifact_ms_per_image']:.1f} ms/image, "
            f"waiting for data {t.get('waiting_for_data_seconds', 0):.2f} s of {t['seconds']:.2f} s"
        )
    if d.get("numerics"):
        n = d["numerics"]
        rows = output_rows(
            n["outputs"], n["tolerance"], f"reference {d['reference']}", [f"seed {n['seed']}"], n["gated"]
        )
        console.print(table("numerics (standard normal inputs)", COLUMNS, rows))
        if n.get("note"):
            console.print(f"numerics: {n['note']}", highlight=False)
    if d.get("latency"):
        lat = d["latency"]
        console.print(
            f"latency: measured {lat['measured_ms']:.2f} ms ({lat['statistic']}, {lat['threads']} thread(s)), "
            f"LUT {lat['predicted_ms']:.2f} ms, error {lat['error_pct']:+.2f} %"
        )
    for g in d["gates"]:
        value = "" if g["value"] is None else f"{g['value']:.2f} "
        status = g.get("status", "passed" if g["ok"] else "failed")
        mark = {"passed": "[green]passed[/]", "failed": "[red]FAILED[/]"}.get(
            status, f"[yellow]not run[/] ({escape(str(g.get('reason', '')))})"
        )
        limit = f"{g['limit']} {g.get('unit', '')}".strip()
        console.print(f"gate {g['gate']}: {value}(limit {limit}) {mark}")
