"""``deploycc lut build|predict|validate|check``: search-time latency lookup tables.

``build`` profiles every candidate unit of a search space (plus stem and head) on a target and
writes a versioned LUT file (resumable through a per-entry cache, progress bar with ETA);
``predict`` sums a LUT for architectures; ``validate`` samples architectures, builds and times
each end to end, and writes figures, a scatter plot and a report; ``check`` is the latency gate
for one artifact (the same check as ``deploycc verify --lut``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from deploycc.cli.options import JSON, check_report_path, overwrite_option, split_list
from deploycc.cli.output import emit, err_console, print_warnings, table

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from deploycc.lut.space import ReducedSpace

app = typer.Typer(name="lut", no_args_is_help=True, help="Latency lookup tables: build, predict, validate, check.")


@app.command("build")
def build_cmd(
    space: str = typer.Option("squeezenas", "--space", help="search space: squeezenas or fbnet"),
    target: str = typer.Option(..., "--target", "-t", help="target name or .toml file"),
    input_shape: str | None = typer.Option(None, "--input-shape", help="1x3xHxW (default: the space's own)"),
    backbone: str | None = typer.Option(None, "--backbone", help="squeezenas backbone: small, large, xlarge"),
    output: Path | None = typer.Option(None, "--output", "-o", help="LUT file (default: <space>.<target>.lut.json)"),
    threads: int = typer.Option(1, "--threads", help="runtime threads, fixed for every entry and recorded"),
    statistic: str = typer.Option("median", "--statistic", help="what the predictor sums: median, min, mean or p90"),
    max_repeats: int | None = typer.Option(None, "--max-repeats", help="cap on timed runs per entry"),
    clock: str = typer.Option("wall", "--clock", help="wall, or cpu: process CPU time (1 thread; for shared machines)"),
    tune_trials: int = typer.Option(
        0, "--tune-trials", help="TVM: MetaSchedule trials per entry (fills the tuning database)"
    ),
    trials_per_task: int | None = typer.Option(None, "--trials-per-task", help="TVM: trials per tuning task"),
    tuning_db: str | None = typer.Option(
        None, "--tuning-db", help="TVM: tuning database folder (default: the target's)"
    ),
    units: str | None = typer.Option(None, "--units", help="comma-separated candidate units to keep (default: all)"),
    cache: Path | None = typer.Option(None, "--cache", help="entry cache folder (default: ~/.cache/deploycc/lut)"),
    remote: str | None = typer.Option(
        None, "--remote", help="time the entries on a device fleet: TVM RPC tracker HOST:PORT"
    ),
    key: str | None = typer.Option(
        None, "--key", help="with --remote: device key; every free device with it takes work"
    ),
    space_file: Path | None = typer.Option(
        None, "--space-file", help="reduced search space (from `lut friendliness --reduce`)"
    ),
    mode: str = typer.Option(
        "isolated",
        "--mode",
        help="isolated (each unit alone), in-context (each unit in a full reference network) or profiled "
        "(per-kernel profiles of sampled whole networks)",
    ),
    cover: int | None = typer.Option(
        None, "--cover", help="profiled: networks that hold each (position, unit) (default 3)"
    ),
    reference: str | None = typer.Option(
        None,
        "--reference",
        help="in-context: the reference genotype, comma-separated units (default: k3_e3 where legal)",
    ),
    on_load: str = typer.Option(
        "flag", "--on-load", help="flag (record) or refuse a measurement taken while the machine is loaded"
    ),
    anchor: bool | None = typer.Option(
        None,
        "--anchor/--no-anchor",
        help="isolated: time each entry as its ratio to the anchor network of lut validate, x the anchor's median "
        "over the build (default on: the machine's drift cancels and validate/check put their measurements on "
        "the LUT's scale, for an anchor network per group of 8 entries and rounds until +-1 %, capped)",
    ),
    overwrite: bool = overwrite_option("the LUT file"),
    as_json: bool = JSON,
):
    """Profile every candidate unit of a search space on a target and write the LUT."""
    from deploycc.core.outputs import check_output
    from deploycc.core.shapes import parse_shape
    from deploycc.lut.anchored import ENTRY_RULE
    from deploycc.lut.profile import ProfileSettings, build_lut, protocol_for
    from deploycc.lut.table import lut_problem

    shape = parse_shape(input_shape) if input_shape else None
    anchored = _build_anchored(anchor, mode, remote)
    out = output or Path(f"{space}.{Path(target).stem}.lut.json")
    out = check_output(out, [space_file, tuning_db], overwrite, folder=False, ours=lut_problem)
    settings = ProfileSettings(
        target=target,
        threads=_threads(threads),
        tune_trials=tune_trials,
        trials_per_task=trials_per_task,
        tuning_db=tuning_db,
        protocol=protocol_for(statistic, max_repeats, clock=_clock(clock)),
        ratio=ENTRY_RULE if anchored else None,
    )
    unit_list: list[str] | ReducedSpace | None = split_list(units) if units else None
    if space_file is not None:
        from deploycc.core.errors import UserError
        from deploycc.lut.space import load_space

        if units:
            raise UserError("--units and --space-file both choose the candidates: give one")
        unit_list = load_space(space_file)
    if mode not in ("isolated", "in-context", "profiled"):
        from deploycc.core.errors import UserError

        raise UserError(f"--mode {mode!r}: choose isolated, in-context or profiled")
    _check_profiled_options(mode, cover, remote, tune_trials, max_repeats)
    if reference and mode != "in-context":
        from deploycc.core.errors import UserError

        raise UserError("--reference applies to --mode in-context only")
    if remote and tune_trials:
        from deploycc.core.errors import UserError

        raise UserError(
            "--tune-trials with --remote: lut build times entries on the fleet but would tune them here; "
            "tune on the devices with `deploycc build NET --tune-trials N --remote HOST:PORT --key KEY` "
            "(the database is shared by workload), then run lut build without --tune-trials"
        )
    timer = _timer(remote, key, on_load)
    with _Bar("profiling", as_json) as bar:
        if mode == "profiled":
            from deploycc.lut.profiled import build_profiled_lut

            lut = build_profiled_lut(
                space, out, settings, shape, backbone, statistic, cache, bar.step, unit_list, cover or 3
            )
        elif mode == "in-context":
            from deploycc.lut.context import build_context_lut

            lut = build_context_lut(
                space,
                out,
                settings,
                shape,
                backbone,
                statistic,
                cache,
                bar.step,
                unit_list,
                timer,
                split_list(reference) if reference else None,
            )
        else:
            lut = build_lut(space, out, settings, shape, backbone, statistic, cache, bar.step, unit_list, timer=timer)
    measured = [e for e in lut.entries.values() if e.get("measured", True)]
    data = {
        "lut": str(out),
        "space": lut.space,
        "backbone": lut.backbone,
        "input_shape": list(lut.input_shape),
        "target": lut.target,
        "entries": len(lut.entries),
        "measured_entries": len(measured),
        "from_cache": bar.cached,
        "threads": lut.threads,
        "statistic": lut.statistic,
        "mode": lut.mode,
        "anchoring": lut.anchoring,
        "toolchain": lut.toolchain,
        "machine": lut.machine,
        "warnings": load_warnings(measured),
    }
    emit(
        data,
        as_json,
        lambda c, d: c.print(
            f"[green]wrote[/] {d['lut']}: {d['entries']} entries ({d['measured_entries']} timed, {d['from_cache']} "
            f"from the cache) for {d['space']} {d['backbone'] or ''} at {'x'.join(map(str, d['input_shape']))} on "
            f"{d['target']['name']} ({d['target']['backend']}), {d['threads']} thread(s), statistic {d['statistic']}, "
            f"mode {d['mode']}" + _anchoring_text(d["anchoring"])
        ),
    )
    print_warnings(data["warnings"])


def _build_anchored(anchor: bool | None, mode: str, remote: str | None) -> bool:
    """Whether ``lut build`` times entries against the anchor network: by default for isolated
    LUTs timed here; ``--anchor`` with another mode is refused (no anchored build exists there)."""
    from deploycc.core.errors import UserError

    if anchor and mode != "isolated":
        raise UserError(
            f"--anchor applies to --mode isolated only ({mode} entries are "
            + ("whole networks around their reference)" if mode == "in-context" else "kernel times from profiles)")
        )
    if anchor and remote:
        raise UserError("--anchor with --remote: a device fleet cannot time an anchor beside entries; add --no-anchor")
    return anchor if anchor is not None else mode == "isolated" and not remote


def _anchoring_text(anchoring: dict | None) -> str:
    if not anchoring:
        return ", not anchored"
    return (
        f", anchored (anchor median {anchoring['anchor']['median_ms']:.2f} ms; 95 % interval median "
        f"+-{anchoring['ci95_pct_median']:.2f} %, max +-{anchoring['ci95_pct_max']:.2f} %, target "
        f"+-{anchoring['rule']['target_pct']:g} % reached by {anchoring['reached']} of {anchoring['entries']} entries)"
    )


# Below this many samples a rank correlation says little: with n items a perfect Kendall tau
# comes by chance once in n! orderings (1 in 6 for 3).
MIN_CORRELATION_SAMPLES = 10


def sample_size_warnings(result: dict) -> list[str]:
    """A warning when the held-out figures (MAPE, Kendall tau, Spearman rho) rest on few architectures."""
    n = result["n_test"]
    if n >= MIN_CORRELATION_SAMPLES:
        return []
    chance = f"; a perfect Kendall tau comes by chance 1 time in {math.factorial(n)}" if 1 < n <= 6 else ""
    return [
        f"the held-out figures rest on {n} architecture(s) (of {result['n']} sampled): fewer than "
        f"{MIN_CORRELATION_SAMPLES} samples say little about rank correlation{chance}; validate with --n 50"
    ]


def load_warnings(entries: list[dict]) -> list[str]:
    """A warning when LUT entries were timed while the machine was loaded or its CPU speed unsteady."""
    loaded = [e for e in entries if (e.get("load") or {}).get("loaded")]
    if not loaded:
        return []
    load = loaded[0]["load"]
    reasons = [*load.get("before", {}).get("reasons", []), *load.get("after", {}).get("reasons", [])]
    why = reasons[0] if reasons else "see each entry's load record"
    return [
        f"{len(loaded)} of {len(entries)} entries were timed on a loaded or unsteady machine "
        f"({why}); they are flagged in the LUT: "
        "time them again when the machine is quiet, or refuse such figures with --on-load refuse"
    ]


@app.command("predict")
def predict_cmd(
    archs: list[str] = typer.Argument(..., help="architecture .json files or zoo names"),
    lut: Path = typer.Option(..., "--lut", help="LUT file from `deploycc lut build`"),
    input_shape: str | None = typer.Option(None, "--input-shape", help="run the architectures at this 1x3xHxW"),
    breakdown: bool = typer.Option(False, "--breakdown", help="show every entry of the sum"),
    measure: bool = typer.Option(False, "--measure", help="also build and time each architecture end to end"),
    allow_mismatch: bool = typer.Option(False, "--allow-mismatch", help="use a LUT made for another toolchain version"),
    space_file: Path | None = typer.Option(
        None, "--space-file", help="reduced search space: refuse architectures outside it"
    ),
    as_json: bool = JSON,
):
    """Predict the latency of architectures by summing a LUT."""
    from deploycc.core.shapes import parse_shape
    from deploycc.lut import Predictor, load_lut
    from deploycc.models import resolve_arch

    table_ = load_lut(lut)
    _check_here(table_, allow_mismatch)
    from deploycc.lut.space import load_space

    predictor = Predictor(table_, space=load_space(space_file) if space_file else None)
    rows = []
    for name in archs:
        arch = resolve_arch(name)
        if input_shape:
            arch = arch.with_input_shape(parse_shape(input_shape))
        row: dict[str, Any] = {"arch": arch.name, "predicted_ms": predictor.predict_arch(arch)}
        if breakdown:
            row["breakdown"] = [{"part": p, "entry": k, "ms": ms} for p, k, ms in predictor.breakdown(arch.genotype)]
        if measure:
            row["measured_ms"] = predictor.measure(arch.genotype)
            row["error_pct"] = 100 * (row["predicted_ms"] - row["measured_ms"]) / row["measured_ms"]
        rows.append(row)
    from deploycc.lut.anchored import mixing_warning

    warning = mixing_warning(table_, False, "--measure (timed alone)") if measure else None
    data = {
        "lut": str(lut),
        "target": table_.target["name"],
        "statistic": table_.statistic,
        "threads": table_.threads,
        "anchored": bool(table_.anchoring),
        "predictions": rows,
        "warnings": [warning] if warning else [],
    }
    emit(data, as_json, _render_predict)
    print_warnings(data["warnings"])


def _check_profiled_options(mode: str, cover, remote, tune_trials: int, max_repeats) -> None:
    """Refuse options that a profiled build would not use, and --cover for the other modes."""
    from deploycc.core.errors import UserError

    if mode != "profiled":
        if cover is not None:
            raise UserError("--cover applies to --mode profiled only")
        return
    for given, name in (
        (remote, "--remote"),
        (tune_trials, "--tune-trials"),
        (max_repeats, "--max-repeats"),
    ):
        if given:
            raise UserError(f"{name} does not apply to --mode profiled (networks are profiled here, per kernel)")
    if cover is not None and cover < 1:
        raise UserError(f"--cover {cover}: every unit needs at least 1 network")


@app.command("validate")
def validate_cmd(
    lut: Path = typer.Option(..., "--lut", help="LUT file from `deploycc lut build`"),
    n: int = typer.Option(50, "--n", help="number of sampled architectures"),
    seed: int = typer.Option(0, "--seed", help="sampling seed"),
    train: int | None = typer.Option(
        None, "--train", help="architectures the corrections are fitted on (default 40 %)"
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="report folder (default: <lut>.validation)"),
    fmt: str = typer.Option("md", "--format", help="report format: md or html"),
    allow_mismatch: bool = typer.Option(
        False, "--allow-mismatch", help="use a LUT made for another target or toolchain version"
    ),
    cache: Path | None = typer.Option(
        None, "--cache", help="measurement cache folder (default: ~/.cache/deploycc/lut)"
    ),
    remote: str | None = typer.Option(
        None, "--remote", help="time the architectures on a device fleet: TVM RPC tracker HOST:PORT"
    ),
    key: str | None = typer.Option(
        None, "--key", help="with --remote: device key; every free device with it takes work"
    ),
    on_load: str = typer.Option(
        "flag", "--on-load", help="flag (record) or refuse a measurement taken while the machine is loaded"
    ),
    profile: int = typer.Option(
        0, "--profile", help="profile K held-out architectures: each LUT entry against its in-network time"
    ),
    anchor: bool = typer.Option(
        True,
        "--anchor/--no-anchor",
        help="time each architecture as its ratio to the LUT's anchor network (default on; on the LUT's scale "
        "when it was built anchored)",
    ),
    retest: int = typer.Option(
        8, "--retest", help="architectures measured a second time, independently: the noise floor (0: none)"
    ),
    overwrite: bool = overwrite_option("the report folder"),
    as_json: bool = JSON,
):
    """Measure N sampled architectures end to end and score the LUT (raw, corrected, affine, MACs)."""
    from deploycc.core.errors import UserError
    from deploycc.core.outputs import check_output, only_names
    from deploycc.lut import load_lut
    from deploycc.lut.report import REPORT_NAMES, write_report
    from deploycc.lut.validate import ValidationPlan, validate

    folder = output or lut.with_name(lut.name.removesuffix(".json") + ".validation")
    folder = check_output(folder, [lut], overwrite, folder=True, ours=only_names(REPORT_NAMES))

    if fmt not in ("md", "html"):
        raise UserError(f"--format {fmt!r}: choose md or html")
    if n < 5:
        raise UserError(f"--n {n}: validation needs at least 5 architectures")
    if profile < 0:
        raise UserError(f"--profile {profile}: give a number of architectures (0: none)")
    if retest < 0:
        raise UserError(f"--retest {retest}: give a number of architectures (0: none)")
    plan = ValidationPlan(
        n=n, seed=seed, train=train, allow_mismatch=allow_mismatch, anchored=anchor, retest=min(retest, n - 1)
    )
    plan.n_train()
    table_ = load_lut(lut)
    with _Bar("measuring", as_json) as bar:
        result = validate(table_, plan, cache, progress=bar.step, timer=_timer(remote, key, on_load))
    if profile:
        from deploycc.lut.layer_view import layer_view

        held = [r["genotype"] for r in result["architectures"] if r["split"] == "test"][:profile]
        result["per_layer"] = layer_view(table_, held)
    mixed = result["anchoring"].get("warning")
    result["warnings"] = sample_size_warnings(result) + ([mixed] if mixed else [])
    files = write_report(result, Path(folder), fmt)
    result["files"] = {k: str(v) for k, v in files.items()}
    emit(result, as_json, _render_validate)
    print_warnings(result["warnings"])


@app.command("friendliness")
def friendliness_cmd(
    lut_args: list[Path] | None = typer.Argument(
        None, help="LUT files, one per target (same space and backbone); or give each with --lut"
    ),
    lut_options: list[Path] | None = typer.Option(
        None, "--lut", help="a LUT file, repeatable (as in every other lut command)"
    ),
    html_out: Path | None = typer.Option(
        None, "--report", "--html", help="write the report (heat maps, comparison) as one HTML file here"
    ),
    reduce_out: Path | None = typer.Option(None, "--reduce", help="write the reduced search space file here"),
    as_json: bool = JSON,
):
    """Hardware friendliness of units per position and target: latency per MAC, roofline, placement, frontier."""
    from deploycc.core.errors import UserError
    from deploycc.lut import load_lut
    from deploycc.lut.friendliness import analyse, equal_macs, reduce
    from deploycc.lut.friendliness_report import compare, html_page, write_html
    from deploycc.lut.space import save_space

    luts = [*(lut_args or []), *(lut_options or [])]
    if not luts:
        raise UserError("give the LUTs to compare: --lut A.lut.json --lut B.lut.json (one per target)")
    check_report_path(html_out)
    tables = [load_lut(p) for p in luts]
    for t in tables[1:]:
        if (t.space, t.backbone, len(t.layers)) != (tables[0].space, tables[0].backbone, len(tables[0].layers)):
            raise UserError(
                f"{t.source}: another space than {tables[0].source} ({t.space} {t.backbone}); compare LUTs of one space"
            )
    cache: dict = {}
    analyses = [analyse(t, cache) for t in tables]
    comparison = compare(analyses)
    reduced = reduce(tables, analyses)
    comparison["equal_macs"] = {t.target["name"]: equal_macs(t, reduced, a) for t, a in zip(tables, analyses)}
    data = {
        "luts": [str(p) for p in luts],
        "analyses": analyses,
        "comparison": comparison,
        "reduced_layers": reduced.layers,
    }
    if reduce_out is not None:
        data["reduced_space"] = str(save_space(reduced, reduce_out))
    if html_out is not None:
        data["html"] = str(write_html(html_out, html_page(analyses, comparison)))
    emit(data, as_json, _render_friendliness)


def _render_friendliness(console, d: dict) -> None:
    comp = d["comparison"]
    console.print(
        table(
            "median roofline efficiency (measured vs the target's roofline)",
            ["unit"] + comp["targets"],
            [[u] + ["n/a" if v is None else f"{v:.3f}" for v in vals] for u, vals in comp["efficiency"].items()],
        )
    )
    for target, never in comp["never_on_frontier"].items():
        console.print(f"{target}: never on the latency-MACs frontier: {', '.join(never) or 'none'}")
    kept = sum(len(units) for units in d["reduced_layers"])
    console.print(
        f"reduced space keeps {kept} (layer, unit) choices"
        + (f", written to {d['reduced_space']}" if "reduced_space" in d else "")
        + (f"; report {d['html']}" if "html" in d else "")
    )


@app.command("check")
def check_cmd(
    artifact: Path = typer.Argument(..., help="artifact folder made by `deploycc build`"),
    lut: Path = typer.Option(..., "--lut", help="LUT file"),
    max_latency_error: float = typer.Option(..., "--max-latency-error", help="gate: |measured vs LUT| at most PCT %"),
    arch: str | None = typer.Option(None, "--arch", help="architecture (default: the one recorded in the manifest)"),
    allow_mismatch: bool = typer.Option(
        False, "--allow-mismatch", help="use a LUT made for another target or toolchain version"
    ),
    anchor: bool | None = typer.Option(
        None,
        "--anchor/--no-anchor",
        help="time the artifact as its ratio to the LUT's anchor network, on the LUT's scale (default: as the "
        "LUT was built; anchoring an unanchored LUT's check only steadies this measurement)",
    ),
    as_json: bool = JSON,
):
    """Latency gate: exit 1 when the artifact's measured latency is off the LUT by more than PCT."""
    from deploycc.lut.gate import enforce, latency_check

    result = latency_check(artifact, lut, max_latency_error, allow_mismatch, arch, anchor=anchor)
    emit(result, as_json, render_gate)
    print_warnings(result["warnings"])
    enforce(result)


def render_gate(console, r: dict) -> None:
    mark = (
        ""
        if r["limit_pct"] is None
        else (f" (limit ±{r['limit_pct']:g} %) " + ("[green]ok[/]" if r["ok"] else "[red]FAIL[/]"))
    )
    console.print(
        f"latency {r['artifact']}: measured {r['measured_ms']:.2f} ms ({r['statistic']}, "
        f"{r['threads']} thread(s), {r['latency'].get('clock', 'wall')} clock), LUT {r['predicted_ms']:.2f} ms, "
        f"error {r['error_pct']:+.2f} %{mark}"
    )
    a = r.get("anchoring") or {}
    if a.get("anchored"):
        ratio, change = a["ratio"], a.get("speed_change_pct")
        console.print(
            f"anchored: ratio {ratio['ratio']:.4f} to the anchor network (95 % interval +-{ratio['ci95_pct']:.2f} %, "
            f"{ratio['rounds']} rounds) x {'the LUT' if a['scale'] == 'lut' else 'this run'}'s anchor median"
            + (f"; machine {change:+.1f} % vs the build" if change is not None else "")
        )
    for item in r.get("mismatch_allowed") or []:
        console.print(f"[yellow]mismatch allowed:[/] {item}")


def _check_here(lut, allow_mismatch: bool) -> None:
    """A LUT measured with another toolchain than this machine's is refused unless allowed."""
    from deploycc.lut import check_compatible
    from deploycc.lut.profile import toolchain_versions
    from deploycc.targets import load_target

    try:
        target = load_target(lut.target["name"])
    except Exception:
        if allow_mismatch:
            return
        raise
    check_compatible(lut, target, toolchain_versions(target), allow_mismatch)


def _timer(remote: str | None, key: str | None, on_load: str = "flag"):
    """Where ``lut build|validate`` time: a device fleet for ``--remote``/``--key``
    (deploycc.fleet), else here, with the load policy ``on_load``."""
    from deploycc.core.errors import UserError
    from deploycc.fleet import remote_options
    from deploycc.verify.conditions import LoadCheck

    check = LoadCheck(policy=on_load)
    fleet = remote_options(remote, key)
    if not fleet:
        from deploycc.lut.timer import LocalTimer

        return LocalTimer(check)
    if on_load != "flag":
        raise UserError(f"--on-load {on_load}: the load check watches this machine; a fleet's devices are not checked")
    from deploycc.fleet.lut import FleetOptions, FleetTimer

    return FleetTimer(FleetOptions(*fleet))


def _clock(clock: str) -> str:
    from deploycc.core.errors import UserError
    from deploycc.verify.measure import CLOCKS

    if clock not in CLOCKS:
        raise UserError(f"--clock {clock!r}: choose one of {', '.join(CLOCKS)}")
    return clock


def _threads(threads: int) -> int:
    from deploycc.core.errors import UserError

    if threads < 1:
        raise UserError(f"--threads {threads}: give a fixed thread count (1 or more); it is recorded in the LUT")
    return threads


class _Bar:
    """A rich progress bar with ETA on stderr (none with --json)."""

    def __init__(self, label: str, quiet: bool):
        self.label, self.quiet, self.cached = label, quiet, 0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self):
        if not self.quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            bar = self._bar = Progress(
                f"[bold]{self.label}[/]",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
                console=err_console,
            )
            bar.start()
        return self

    def _advance(self, done: int, total: int, text: str) -> None:
        if self._bar is None:
            return
        if self._task is None:
            self._task = self._bar.add_task("", total=total)
        self._bar.update(self._task, completed=done, total=total, description=text)  # the retest restarts it

    def step(self, step) -> None:
        """Progress of ``lut build|validate`` (a ``deploycc.lut.workflow.Step``), here or on a fleet."""
        self.cached += step.event == "cached"
        if self._bar is not None:
            self._advance(step.done, step.total, self._describe(step))

    def _describe(self, step) -> str:
        if step.device:  # a fleet's job: which job, on which device, what happened
            return f"{step.job} {step.event} on {step.device}" + (f": {step.detail}" if step.detail else "")
        # here: an entry by its key, an architecture (its key is only an index) by its latency
        what = step.job if self.label == "profiling" else f"{step.record['latency']['median_ms']:.1f} ms"
        return what + (" (cached)" if step.event == "cached" else "")

    def __exit__(self, *exc):
        if self._bar:
            self._bar.stop()


def _render_predict(console, d: dict) -> None:
    rows = [
        [r["arch"], f"{r['predicted_ms']:.2f}"]
        + ([f"{r['measured_ms']:.2f}", f"{r['error_pct']:+.2f}"] if "measured_ms" in r else [])
        for r in d["predictions"]
    ]
    cols = ["architecture", "LUT ms"] + (
        ["measured ms", "error %"] if any("measured_ms" in r for r in d["predictions"]) else []
    )
    console.print(table(f"LUT prediction ({d['target']}, {d['statistic']}, {d['threads']} thread(s))", cols, rows))
    for r in d["predictions"]:
        if "breakdown" in r:
            console.print(
                table(
                    f"{r['arch']}: entries",
                    ["part", "entry", "ms"],
                    [[b["part"], b["entry"], f"{b['ms']:.3f}"] for b in r["breakdown"]],
                )
            )


def _render_validate(console, d: dict) -> None:
    from deploycc.lut.report import sections

    shown = sections(d)[:3] + [s for s in sections(d) if s[0].startswith("Per unit inside")]
    for title, cols, rows, note in shown:
        console.print(table(title, cols, rows))
        if note:
            console.print(note)
    console.print(f"[green]report[/] {d['files']['report']}, plot {d['files']['plot']}, data {d['files']['json']}")
