"""``--report FILE.html`` of ``build``, ``verify``, ``bench`` and ``inspect``: gather what each
report shows beyond the command's own result (the build's pass records and legality map, a few
sample pictures) and write the page of ``deploycc.report``; the path goes to stderr."""

from __future__ import annotations

from pathlib import Path

from deploycc.cli.output import err_console


def _written(path: Path) -> None:
    err_console.print(f"report: {path}", highlight=False)


def write_build_report(path: Path, result, model: str, written: bool) -> None:
    from deploycc.report import build, write_report

    _written(write_report(build.page(result.report_data(model, written)), path))


def write_verify_report(
    path: Path,
    report: dict,
    session,
    manifest: dict,
    where: str,
    data: Path | None,
    split: str | None,
    max_images: int | None,
    ref=None,
    ref_where: str = "reference",
) -> None:
    """The verify page; with labelled data, three sample images drawn with artifact and reference."""
    from deploycc.report import verify, write_report

    pictures = None
    if data is not None:
        from deploycc.data import open_dataset
        from deploycc.verify.evaluate import model_io, resolve_preprocessing
        from deploycc.verify.samples import sample_pictures

        dataset = open_dataset(data, split).first(max_images)
        prep, _ = resolve_preprocessing(manifest.get("preprocessing"))
        ref_io = model_io(ref, ref_where) if ref is not None else None
        pictures = sample_pictures(session, model_io(session, where), dataset, prep, ref, ref_io)
    _written(write_report(verify.page(report, pictures), path))


def write_bench_report(path: Path, data: dict) -> None:
    from deploycc.report import bench, write_report

    _written(write_report(bench.page(data), path))


def write_inspect_report(path: Path, data: dict) -> None:
    from deploycc.report import inspect, write_report

    _written(write_report(inspect.page(data), path))
