"""``deploycc predict ARTIFACT IMAGE... -o DIR``: segment ordinary photos with any artifact.

The engine is ``deploycc.verify.predict`` (what is written per photo, and why nothing is written
when one photo fails); this command opens the artifact and its optional reference, draws the
progress bar and prints where the pictures went.
"""

from __future__ import annotations

from pathlib import Path

import typer

from deploycc.cli.cmd_verify import open_reference
from deploycc.cli.options import JSON, overwrite_option
from deploycc.cli.output import emit, progress_bar, table
from deploycc.cli.verify_subject import open_for_verify
from deploycc.core.outputs import check_output
from deploycc.verify.evaluate import artifact_label
from deploycc.verify.predict import Predictor, photo_list, predict_photos, predictions_problem

app = typer.Typer()  # merged into the root command by deploycc.cli.main


@app.command("predict")
def predict_cmd(
    artifact: Path = typer.Argument(..., help="artifact folder made by `deploycc build`"),
    images: list[Path] = typer.Argument(..., help="photos (PNG, JPEG, ...; any size), or folders of photos"),
    output: Path = typer.Option(..., "--output", "-o", help="folder for the class maps, overlays and predictions.json"),
    reference: str | None = typer.Option(
        None,
        "--reference",
        "-r",
        help="also run this model (ONNX file or artifact folder) and map where it disagrees with the artifact",
    ),
    threads: int = typer.Option(0, "--threads", help="runtime threads (0: the artifact's setting)"),
    overwrite: bool = overwrite_option("the output folder"),
    as_json: bool = JSON,
):
    """Segment photos with an artifact: class map (trainIds PNG) and colour overlay with legend per photo."""
    output = check_output(output, [artifact, *images, reference], overwrite, folder=True, ours=predictions_problem)
    photos = photo_list(images)
    manifest, session, _ = open_for_verify(artifact, threads)
    ref = open_reference(reference, session, threads) if reference else None
    pred = Predictor(
        session,
        manifest,
        artifact_label(artifact, manifest),
        ref,
        f"reference {reference}" if reference else "reference",
    )
    with progress_bar("predict", len(photos), as_json) as advance:
        summary = predict_photos(pred, photos, output, advance)
    summary["output"] = str(output)
    emit(summary, as_json, _render)


def _render(console, d: dict) -> None:
    rows = []
    for p in d["photos"]:
        top = ", ".join(f"{c['name']} {100 * c['share']:.0f} %" for c in p["classes"][:3])
        extra = [f"{100 * p['disagreement']:.2f} %"] if "disagreement" in p else []
        rows.append([Path(p["photo"]).name, f"{p['size'][0]}x{p['size'][1]}", top, *extra])
    cols = ["photo", "size", "largest classes"] + (
        ["disagreement"] if d["photos"] and "disagreement" in d["photos"][0] else []
    )
    console.print(table(f"predictions of {d['artifact']}", cols, rows))
    console.print(
        f"wrote {len(d['photos'])} class map(s) (*_trainIds.png), overlay(s) (*_overlay.png)"
        f"{' and disagreement map(s)' if cols[-1] == 'disagreement' else ''} and predictions.json "
        f"to {d['output']}",
        highlight=False,
    )
