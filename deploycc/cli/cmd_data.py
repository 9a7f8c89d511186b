"""``deploycc data synth`` (procedural labelled street scenes) and ``deploycc data check``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from deploycc.cli.options import JSON
from deploycc.cli.output import emit, err_console, table
from deploycc.core.errors import UserError
from deploycc.core.shapes import parse_shape
from deploycc.data import open_dataset
from deploycc.data.synth import write_split

if TYPE_CHECKING:
    from rich.progress import Progress

app = typer.Typer(name="data", no_args_is_help=True, help="Labelled data: synthesize street scenes, check a dataset.")


@app.command("synth")
def synth_cmd(
    out: Path = typer.Option(
        ..., "--output", "--out", "-o", help="dataset root (Cityscapes layout is written under it)"
    ),
    n: int = typer.Option(16, "--n", help="number of scenes"),
    size: str = typer.Option("256x512", "--size", help="H x W of every scene, e.g. 1024x2048"),
    seed: int = typer.Option(0, "--seed", help="scene i is drawn from (seed, i): same seed, same files"),
    split: str = typer.Option("val", "--split", help="split folder to write (train, val, ...)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the split if it exists"),
    as_json: bool = JSON,
):
    """Write procedural street scenes with exact labels in the Cityscapes layout."""
    dims = parse_shape(size, "--size")
    if len(dims) != 2:
        raise UserError(f"--size {size!r}: give H x W, e.g. 256x512")
    with _bar(n, as_json, "synth") as advance:
        record = write_split(out, split, n, dims, seed, overwrite, advance)
    emit(
        record,
        as_json,
        lambda c, d: c.print(
            f"wrote {d['n']} scenes of {d['size'][0]}x{d['size'][1]} (seed {d['seed']}) to {out} split {d['split']}"
        ),
    )


@app.command("check")
def check_cmd(
    data: Path = typer.Argument(..., help="dataset root: Cityscapes layout or images/ + labels/"),
    split: str | None = typer.Option(None, "--split", help="Cityscapes split (default: val)"),
    as_json: bool = JSON,
):
    """Read every image and label once; report sizes and pixels per class (exit 2 on any defect)."""
    dataset = open_dataset(data, split)
    counts = np.zeros(256, dtype=np.int64)
    sizes: dict[str, int] = {}
    with _bar(len(dataset.samples), as_json, "check") as advance:
        for sample in dataset.samples:
            image, label = dataset.read(sample)
            assert label is not None, "open_dataset required a label for every image"
            counts += np.bincount(label.ravel(), minlength=256)
            key = f"{image.shape[0]}x{image.shape[1]}"
            sizes[key] = sizes.get(key, 0) + 1
            if advance:
                advance(1)
    names = dataset.class_names or [str(i) for i in range(255)]
    total = int(counts.sum())
    classes = {names[i]: int(counts[i]) for i in range(min(255, len(names))) if counts[i]}
    data_ = {
        **dataset.describe(),
        "sizes": sizes,
        "pixels": total,
        "ignored_pixels": int(counts[255]),
        "pixels_per_class": classes,
    }
    emit(data_, as_json, _render_check)


def _render_check(console, d: dict) -> None:
    total = max(1, d["pixels"])
    rows = [[name, n, f"{100 * n / total:.2f}"] for name, n in d["pixels_per_class"].items()]
    rows.append(["(ignored)", d["ignored_pixels"], f"{100 * d['ignored_pixels'] / total:.2f}"])
    sizes = ", ".join(f"{n} x {size}" for size, n in d["sizes"].items())
    console.print(
        table(f"{d['images']} images ({d['layout']} {d['split'] or ''}): {sizes}", ["class", "pixels", "%"], rows)
    )


class _bar:
    def __init__(self, total: int, quiet: bool, what: str):
        self.total, self.quiet, self.what = total, quiet, what
        self._p: Progress | None = None

    def __enter__(self):
        if self.quiet:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress

        bar = self._p = Progress(
            f"[bold]{self.what}[/]", BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
        )
        bar.start()
        task = bar.add_task(self.what, total=self.total)
        return lambda k: bar.advance(task, k)

    def __exit__(self, *exc):
        if self._p:
            self._p.stop()
