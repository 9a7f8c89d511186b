"""Commands that make and run artifacts: ``build``, ``run``, ``bench``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import typer

from deploycc.cli.numerics_view import build_numerics_notes, build_numerics_table
from deploycc.cli.options import JSON, check_report_path, overwrite_option, report_option, split_list
from deploycc.cli.output import StageReporter, emit, print_warnings, table
from deploycc.cli.reports import write_bench_report, write_build_report
from deploycc.core.errors import GateFailed, Unverified, UserError, first_line
from deploycc.core.numerics import random_feeds
from deploycc.core.outputs import check_output, staged_file
from deploycc.core.shapes import parse_input_shapes
from deploycc.pipeline.pipeline import BuildOptions, build
from deploycc.pipeline.runtime import open_artifact
from deploycc.pipeline.stages import Stages
from deploycc.verify.measure import Latency, Protocol, machine_facts, time_session

app = typer.Typer()  # merged into the root command by deploycc.cli.main


@app.command("build")
def build_cmd(
    model: str | None = typer.Argument(None, help="ONNX file, architecture .json, or zoo architecture name"),
    target: str = typer.Option("cpu", "--target", "-t", help="target name (see `deploycc targets`) or .toml file"),
    output: Path | None = typer.Option(None, "--output", "-o", help="artifact folder (default: <model>.<target>)"),
    input_shape: str | None = typer.Option(None, "--input-shape", help="static input shape, e.g. 1x3x1024x2048"),
    weights: str | None = typer.Option(None, "--weights", help="state dict (.pth) for an architecture file"),
    passes: str | None = typer.Option(None, "--passes", help="comma-separated pass list (default: the target's)"),
    verify_passes: bool = typer.Option(
        True, "--verify-passes/--no-verify-passes", help="check numerics after every pass"
    ),
    force: bool = typer.Option(False, "--force", help="apply rewrites even where the target would not need them"),
    tune_trials: int = typer.Option(
        0, "--tune-trials", help="TVM MetaSchedule trials in total (0: apply the database only)"
    ),
    trials_per_task: int | None = typer.Option(None, "--trials-per-task", help="TVM MetaSchedule trials per task"),
    tuning_db: str | None = typer.Option(
        None, "--tuning-db", help="TVM tuning database folder (default: per-target cache)"
    ),
    remote: str | None = typer.Option(
        None, "--remote", help="with --tune-trials: measure candidates on a device of this TVM RPC tracker HOST:PORT"
    ),
    key: str | None = typer.Option(None, "--key", help="with --remote: the device key the rpc_servers registered"),
    threads: int = typer.Option(0, "--threads", help="runtime threads recorded in the artifact (0: runtime default)"),
    backend: str | None = typer.Option(
        None, "--backend", help="compile with this backend instead of the target's (e.g. tvm)"
    ),
    calib_data: str | None = typer.Option(
        None, "--calib-data", help="INT8: folder of calibration images (default: synthetic, see docs)"
    ),
    calib_method: str | None = typer.Option(None, "--calib-method", help="INT8: minmax | entropy | percentile"),
    calib_images: int | None = typer.Option(None, "--calib-images", help="INT8: number of calibration images"),
    max_miou_drop: float | None = typer.Option(
        None,
        "--max-miou-drop",
        help="INT8: keep sensitive layers in FP16/FP32 until the agreement-mIoU drop (points) holds",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="replace an existing -o path that is not a deploycc artifact"
    ),
    resume: Path | None = typer.Option(
        None, "--resume", help="finish a device bundle here (build its TensorRT engine)"
    ),
    report: Path | None = report_option("the build (stages, passes, legality map, numerics)"),
    as_json: bool = JSON,
):
    """Compile MODEL for a target into a verified artifact folder (or finish a bundle: --resume)."""
    check_report_path(report, [model, weights, calib_data, tuning_db, output], overwrite)
    if resume is not None:
        if report is not None:
            raise UserError("--report is written by a build from MODEL, not by --resume")
        return _resume(resume, model, as_json)
    if model is None:
        raise UserError("missing MODEL (an ONNX file, architecture .json or zoo name), or give --resume BUNDLE")
    out = output or Path(f"{Path(model).stem}.{Path(target).stem}")
    from deploycc.fleet import remote_options

    fleet = remote_options(remote, key)
    options = BuildOptions(
        input_shape=parse_input_shapes(input_shape),
        weights=weights,
        passes=split_list(passes),
        verify_passes=verify_passes,
        force=force,
        tune_trials=tune_trials,
        trials_per_task=trials_per_task,
        tuning_db=tuning_db,
        tune_remote=fleet and fleet[0],
        tune_key=fleet and fleet[1],
        threads=threads,
        backend=backend,
        calib_data=calib_data,
        calib_method=calib_method,
        calib_images=calib_images,
        max_miou_drop=max_miou_drop,
        overwrite=overwrite,
    )
    try:
        result = build(model, target, out, options, Stages(StageReporter(quiet=as_json)))
    except GateFailed as failed:  # a check failed: nothing is written at out; --json and the report say why
        failed_result = getattr(failed, "result", None)
        if failed_result is not None and as_json:
            emit(_build_summary(failed_result, model, written=False), True, _render_build)
        if report is not None and failed_result is not None:
            write_build_report(report, failed_result, model, written=False)
        raise
    summary = _build_summary(result, model)
    emit(summary, as_json, _render_build)
    print_warnings(summary["warnings"])
    if report is not None:
        write_build_report(report, result, model, written=True)
    v = result.manifest["verification"]
    if v["status"] == "not_run":
        needs = with_model(v["needs"], model)
        raise Unverified(f"{out}: built, numerics not checked: {v['reason']}; to check them: {needs}")


def _resume(bundle: Path, model: str | None, as_json: bool) -> None:
    from deploycc.pipeline.bundle import resume

    if model is not None:
        raise UserError("--resume BUNDLE takes no MODEL: the bundle carries its own model")
    stages = Stages(StageReporter(quiet=as_json))
    manifest = resume(bundle, stages)
    data = {
        "artifact": str(bundle),
        "target": manifest["target"]["name"],
        "verification": manifest["verification"],
        "engine_build": manifest["backend_info"]["engine_build"],
        "stage_seconds": dict(stages.times),
    }
    emit(
        data,
        as_json,
        lambda c, d: c.print(
            f"[green]finished[/] {d['artifact']}: TensorRT engine built on {d['engine_build']['gpu']} and verified"
        ),
    )


def with_model(command: str, model: str | None) -> str:
    """A device step's command with the model this build was given in place of the placeholder
    (an architecture file or zoo name is no ONNX file ``verify --reference`` could read: kept)."""
    if model and Path(model).suffix.lower() == ".onnx":
        return command.replace("--reference MODEL", f"--reference {model}")
    return command


def _calibration(m: dict) -> dict | None:
    """Where an INT8 build's activation ranges came from, and whether it was the synthetic default."""
    from deploycc.quantize.calibration import DEFAULT_SOURCE

    calib = m.get("quantization", {}).get("calibration")
    if not calib:
        return None
    source = calib.get("source", "")
    return {"source": source, "images": calib.get("images"), "synthetic": source.startswith(DEFAULT_SOURCE)}


def _warnings(m: dict) -> list[str]:
    """What the user should know about how this artifact was made (printed on stderr, kept in --json)."""
    calib = _calibration(m)
    if calib and calib["synthetic"]:
        return [
            f"INT8 ranges calibrated on {calib['images']} {calib['source']} (no --calib-data); for a net "
            "trained on other images (Cityscapes, your own), calibrate on those: --calib-data FOLDER"
        ]
    return []


def _build_summary(result, model: str | None = None, written: bool = True) -> dict:
    """What ``--json`` prints; a failed build (``written`` False) adds the failed check, its reason and
    its per-layer table, and lists no files (none were written)."""
    m = result.manifest
    return {
        "calibration": _calibration(m),
        "warnings": _warnings(m),
        "artifact": str(result.out),
        "written": written,
        "target": result.target.name,
        "backend": m["backend"],
        "ok": result.ok,
        "failure": result.failure,
        "stage_seconds": result.times,
        "log": result.log,
        "verification": m["verification"],
        "passes": [
            {
                "name": p["name"],
                "modified": p["modified"],
                "rewrites": len(p["rewrites"]),
                "refusals": len(p["refusals"]),
                "nodes": f"{p['nodes_before']}->{p['nodes_after']}",
            }
            for p in m["passes"]
        ],
        **({"trt_offline_checks": m["trt_offline_checks"]} if "trt_offline_checks" in m else {}),
        "remaining": [{**step, "command": with_model(step.get("command", ""), model)} for step in m["remaining"]]
        if written
        else [],
        "files": m["files"] if written else {},
    }


def _render_build(console, data: dict) -> None:
    rows = [[p["name"], p["nodes"], p["rewrites"], p["refusals"]] for p in data["passes"]]
    console.print(table("passes", ["pass", "nodes", "rewrites", "refusals"], rows))
    v = data["verification"]
    if v.get("outputs"):
        console.print(build_numerics_table(v))
        for note in build_numerics_notes(v):
            console.print(note, highlight=False)
    not_run = v.get("status") == "not_run"
    for step in data["remaining"]:
        if not_run and step.get("what") == v.get("reason"):
            continue  # the unverified line that ends the command says it, with the command to run
        console.print(f"[yellow]remaining on the device:[/] {step.get('what', '')}: [bold]{step.get('command', '')}[/]")
    what = (
        "unverified artifact"
        if v.get("status") == "not_run"
        else "device-ready bundle"
        if data["remaining"]
        else "verified artifact"
    )
    console.print(
        f"[green]built[/] {what} {data['artifact']} for {data['target']} ({data['backend']}) "
        f"in {sum(data['stage_seconds'].values()):.1f} s" + ("; numerics not run here (see below)" if not_run else "")
    )


@app.command("run")
def run_cmd(
    artifact: Path = typer.Argument(..., help="artifact folder made by `deploycc build`"),
    inputs: list[str] = typer.Option(..., "--input", "-i", help="x.npy for the only input, or name=x.npy"),
    output: Path = typer.Option(..., "--output", "-o", help=".npy (one output) or .npz (all outputs)"),
    threads: int | None = typer.Option(None, "--threads"),
    overwrite: bool = overwrite_option("the --output file"),
):
    """Run an artifact on inputs stored as .npy files, whatever backend made it."""
    output = check_output(
        output, [artifact, *(i.rpartition("=")[2] for i in inputs)], overwrite, folder=False, ours=None
    )
    if not output.parent.is_dir():
        raise UserError(f"--output {output}: folder {output.parent} does not exist")
    if output.suffix not in (".npy", ".npz"):
        raise UserError(f"--output {output}: must end in .npy (one output) or .npz (all outputs)")
    _check_threads(threads, artifact)
    _manifest, session = open_artifact(artifact, threads)
    feeds = _read_feeds(inputs, session)
    outputs = session.run(feeds)
    _write_outputs(output, [s.name for s in session.outputs], outputs)
    typer.echo(f"wrote {output} ({', '.join(f'{s.name} {list(o.shape)}' for s, o in zip(session.outputs, outputs))})")


def _read_feeds(items: list[str], session) -> dict:
    names = [s.name for s in session.inputs]
    feeds = {}
    for item in items:
        name, sep, path = item.rpartition("=")
        if not sep:
            if len(names) != 1:
                raise UserError(f"--input {item}: the artifact has inputs {names}; write name=file.npy")
            name = names[0]
        feeds[name] = _load_npy(Path(path))
    return feeds


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"--input {path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise UserError(f"--input {path}: not a .npy array ({first_line(exc)})") from None


def _write_outputs(path: Path, names: list[str], outputs: list) -> None:
    if path.suffix != ".npz" and len(outputs) != 1:
        raise UserError(f"--output {path}: the artifact has {len(outputs)} outputs; use a .npz file")
    with staged_file(path) as tmp, open(tmp, "wb") as fh:
        if path.suffix == ".npz":
            np.savez(fh, **dict(zip(names, outputs)))
        else:
            np.save(fh, outputs[0])


def _check_threads(threads: int | None, artifact: Path) -> None:
    """``--threads`` is a count >= 0, and only for artifacts whose runtime takes it per session:
    TVM's thread pool is sized once per process (TVM_NUM_THREADS), so it is refused there."""
    if threads is None:
        return
    if threads < 0:
        raise UserError(f"--threads {threads}: must be >= 0 (0: the runtime's default)")
    from deploycc.pipeline.artifact import read_manifest

    backend = read_manifest(artifact, check_hashes=False).get("backend")
    if threads and backend == "tvm":
        raise UserError(
            f"--threads {threads} does not apply to TVM artifact {artifact}: TVM sizes its thread "
            f"pool once per process; run with TVM_NUM_THREADS={threads} instead"
        )


@app.command("bench")
def bench_cmd(
    artifact: Path = typer.Argument(..., help="artifact folder"),
    threads: int = typer.Option(0, "--threads", help="runtime threads (0: runtime default), recorded"),
    max_repeats: int = typer.Option(50, "--max-repeats"),
    max_seconds: float = typer.Option(60.0, "--max-seconds"),
    remote: str | None = typer.Option(None, "--remote", help="time it on a device: TVM RPC tracker HOST:PORT"),
    key: str | None = typer.Option(None, "--key", help="with --remote: the device key the rpc_servers registered"),
    profile: bool = typer.Option(
        False, "--profile", help="also profile per node (ORT) / per function (TVM), mapped to layers and units"
    ),
    profile_runs: int = typer.Option(10, "--profile-runs", help="with --profile: profiled runs averaged per node"),
    report: Path | None = report_option("the timing (latency distribution, per-layer profile)"),
    overwrite: bool = overwrite_option("the --report file"),
    as_json: bool = JSON,
):
    """Time an artifact with the common protocol (warm-up, repeats until the median is stable)."""
    from deploycc.fleet import remote_bench, remote_options

    check_report_path(report, [artifact], overwrite)
    if profile and remote:
        raise UserError("--profile runs the backend's profiler on this machine; it cannot be combined with --remote")
    if isinstance(max_repeats, bool) or max_repeats < 1:
        raise UserError(f"--max-repeats {max_repeats}: must be >= 1")
    if not math.isfinite(max_seconds) or max_seconds <= 0:
        raise UserError(f"--max-seconds {max_seconds}: must be a finite number > 0")
    _check_threads(threads or None, artifact)
    fleet = remote_options(remote, key)
    if fleet:
        data = remote_bench(artifact, *fleet, Protocol(max_repeats=max_repeats, max_seconds=max_seconds), threads)
        lat = Latency.from_dict(data["latency"])
    else:
        manifest, session = open_artifact(artifact, threads or None)
        feeds = random_feeds(session.inputs, 0)
        lat = time_session(session, feeds, Protocol(max_repeats=max_repeats, max_seconds=max_seconds), threads)
        data = {
            "artifact": str(artifact),
            "target": manifest["target"]["name"],
            "latency": lat.to_dict(),
            "samples_ms": list(lat.samples_ms),
            "machine": machine_facts(),
        }
    if profile:
        from deploycc.verify.profile import profile_artifact

        data["profile"] = profile_artifact(artifact, threads, profile_runs)
    emit(data, as_json, _render_bench)
    if report is not None:
        reason = (
            None
            if profile
            else (
                "--profile runs the backend's profiler on this machine only"
                if remote
                else "bench ran without --profile"
            )
        )
        write_bench_report(
            report,
            {
                **data,
                "protocol": Protocol(max_repeats=max_repeats, max_seconds=max_seconds).to_dict(),
                "profile_not_run": reason,
            },
        )


def _render_bench(console, d: dict) -> None:
    lat = Latency.from_dict(d["latency"])
    console.print(
        table(
            f"latency of {d['artifact']} ({d['target']})",
            ["median ms", "p90", "p99", "min", "runs", "stable"],
            [
                [
                    f"{lat.median_ms:.2f}",
                    f"{lat.p90_ms:.2f}",
                    f"{lat.p99_ms:.2f}",
                    f"{lat.min_ms:.2f}",
                    lat.runs,
                    lat.stable,
                ]
            ],
        )
    )
    if "profile" in d:
        from deploycc.verify.profile import by_layer

        rows = by_layer(d["profile"])
        total = sum(r["ms"] for r in rows) or 1.0
        console.print(
            table(
                f"profile ({d['profile']['backend']}): time per layer, nodes summed",
                ["layer", "unit", "ms", "share"],
                [
                    [r["layer"] or "(unplaced)", r["unit"] or "", f"{r['ms']:.3f}", f"{100 * r['ms'] / total:.1f} %"]
                    for r in rows
                ],
            )
        )
    if d.get("remote"):
        console.print(f"timed on {d['remote']['device']} ({d['remote']['key']}): {d['remote']['timing']}")
