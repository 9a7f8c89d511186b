"""``deploycc train ARCH --data DIR -o model.onnx``: deterministic CPU training of a segmentation net."""

from __future__ import annotations

from pathlib import Path

import typer

from deploycc.cli.options import JSON, overwrite_option
from deploycc.cli.output import emit, err_console, table
from deploycc.train import TrainConfig, train

app = typer.Typer()  # merged into the root command by deploycc.cli.main


@app.command("train")
def train_cmd(
    arch: str = typer.Argument(
        ..., help="architecture .json or zoo name (squeezenas space); its input_shape is the training size"
    ),
    data: Path = typer.Option(..., "--data", "-d", help="Cityscapes-layout dataset with train and val splits"),
    output: Path = typer.Option(..., "--output", "-o", help="trained model (.onnx, recipe in its metadata)"),
    steps: int = typer.Option(600, "--steps", help="optimizer steps"),
    batch: int = typer.Option(8, "--batch", help="images per step"),
    lr: float = typer.Option(3e-3, "--lr", help="peak learning rate (AdamW, warm-up then cosine)"),
    seed: int = typer.Option(0, "--seed", help="seed of the initialization, batch order and augmentation"),
    threads: int = typer.Option(
        1, "--threads", help="PyTorch threads (part of the reproducible recipe; 1 is robust on a shared machine)"
    ),
    train_split: str = typer.Option("train", "--train-split"),
    val_split: str = typer.Option("val", "--val-split"),
    overwrite: bool = overwrite_option("the --output file"),
    as_json: bool = JSON,
):
    """Train ARCH on labelled data (PyTorch, CPU, deterministic), export ONNX and score it on the val split."""
    cfg = TrainConfig(
        arch=arch,
        data=str(data),
        out=str(output),
        steps=steps,
        batch=batch,
        lr=lr,
        seed=seed,
        threads=threads,
        train_split=train_split,
        val_split=val_split,
    )
    recipe = train(cfg, None if as_json else _log, overwrite)
    emit(recipe, as_json, _render)


def _log(step: int, steps: int, loss: float, seconds: float) -> None:
    err_console.print(f"  step {step:>5}/{steps}  loss {loss:.4f}  {seconds:7.1f} s", highlight=False)


def _render(console, r: dict) -> None:
    v = r["validation"]
    if "miou" in v:
        rows = [[name, "—" if x is None else f"{100 * x:.2f}"] for name, x in v["iou"].items()]
        console.print(table(f"IoU per class, % ({v['images']} {v['split']} images)", ["class", "IoU"], rows))
        console.print(
            f"validation mIoU [bold]{100 * v['miou']:.2f} %[/], pixel accuracy {100 * v['pixel_accuracy']:.2f} %"
        )
    else:
        console.print(f"validation: {v['skipped']}")
    console.print(
        f"trained in {r['train_seconds']:.0f} s (final loss {r['final_loss']:.4f}); wrote {r['config']['out']}"
    )
    console.print(f"recipe: {r['command']}")
