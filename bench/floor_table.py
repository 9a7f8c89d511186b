"""The table of ``bench/bench_floor.py --table``: the measured figures per cell and factor, and per
target the floors each candidate figure allows (pass every clean cell, fail every distortion that
costs >= 1 agreement-mIoU point)."""

from __future__ import annotations

COST_LIMIT = 1.0  # points: a distortion costing this much must fail


def _cost(row: dict, factor: str) -> float:
    return row["factors"][factor]["miou_drop"] - row["factors"]["1.0"]["miou_drop"]


def probe_gain(row: dict, factor: float) -> float | None:
    """Points the better of the x0.5 and x2 rescales wins back from ``factor``'s ranges."""
    f = row["factors"]
    near = [f[str(k)]["miou_drop"] for k in (factor * 0.5, factor * 2.0) if str(k) in f]
    return f[str(factor)]["miou_drop"] - min(near) if len(near) == 2 else None


def print_table(rows: list[dict]) -> None:
    from bench_floor import DISTORTIONS

    print("cell | factor | cosine | agreement | agreement-mIoU drop | cost (points) | probe gain")
    for row in rows:
        for factor in (1.0, *DISTORTIONS):
            fig = row["factors"][str(factor)]
            gain = probe_gain(row, factor)
            print(
                f"{row['net']}@{row['target']} {'x'.join(map(str, row['shape'][2:]))} | x{factor:g} | "
                f"{fig['cosine_min']:.4f} | {fig['argmax_agreement_min']:.4f} | {fig['miou_drop']:.2f} | "
                f"{_cost(row, str(factor)):+.2f} | {'-' if gain is None else f'{gain:+.2f}'}"
            )
    for target in sorted({r["target"] for r in rows}):
        _print_floors(target, [r for r in rows if r["target"] == target], DISTORTIONS)


def _print_floors(target: str, rows: list[dict], distortions) -> None:
    clean = [r["factors"]["1.0"] for r in rows]
    bad = [r["factors"][str(f)] for r in rows for f in distortions if _cost(r, str(f)) >= COST_LIMIT]
    gains_clean = [probe_gain(r, 1.0) for r in rows]
    gains_bad = [probe_gain(r, f) for r in rows for f in distortions if _cost(r, str(f)) >= COST_LIMIT]
    print(f"\n{target}: {len(rows)} clean cells, {len(bad)} distortions costing >= {COST_LIMIT} point")
    for key, higher_is_better in (("cosine_min", True), ("argmax_agreement_min", True), ("miou_drop", False)):
        worst_clean = (min if higher_is_better else max)(c[key] for c in clean)
        best_bad = (max if higher_is_better else min)((b[key] for b in bad), default=None)
        sep = best_bad is None or (best_bad < worst_clean if higher_is_better else best_bad > worst_clean)
        print(
            f"  {key}: worst clean {worst_clean:.4f}, best costly distortion {best_bad}: "
            f"{'separates' if sep else 'does NOT separate'}"
        )
    _print_gate(target, rows, distortions)
    worst = max(g for g in gains_clean if g is not None)
    least = min((g for g in gains_bad if g is not None), default=None)
    sep = least is None or least > worst
    print(
        f"  probe gain: largest clean {worst:.2f}, smallest of a costly distortion {least}: "
        f"{'separates' if sep else 'does NOT separate'}"
    )


def print_markdown(rows: list[dict]) -> None:
    """One row per cell: the clean figures, then per distortion ``cost / probe gain / cosine``."""
    from bench_floor import DISTORTIONS

    print("| cell | clean: cosine, mIoU drop, probe gain | " + " | ".join(f"x{f:g}" for f in DISTORTIONS) + " |")
    print("|---|---|" + "---|" * len(DISTORTIONS))
    for row in rows:
        clean = row["factors"]["1.0"]
        cells = [
            f"{_cost(row, str(f)):+.1f} / {probe_gain(row, f):+.1f} / {row['factors'][str(f)]['cosine_min']:.3f}"
            for f in DISTORTIONS
        ]
        name = f"{row['net']}@{row['target']} {'x'.join(map(str, row['shape'][2:]))}"
        head = f"{clean['cosine_min']:.4f}, {clean['miou_drop']:.1f}, {probe_gain(row, 1.0):+.1f}"
        print(f"| {name} | {head} | " + " | ".join(cells) + " |")


def _print_gate(target: str, rows: list[dict], distortions) -> None:
    """The target file's floor (``min_fp32_cosine``, ``max_rescale_gain_points``) on every cell."""
    from deploycc.quantize.floor import DEFAULT_MAX_RESCALE_GAIN, DEFAULT_MIN_COSINE
    from deploycc.targets import load_target

    verify = load_target(target).verify
    cosine = float(verify.get("min_fp32_cosine", DEFAULT_MIN_COSINE))
    gain = float(verify.get("max_rescale_gain_points", DEFAULT_MAX_RESCALE_GAIN))

    def passes(row: dict, factor: float) -> bool:  # a distortion is a cached entry unlike a fresh calibration
        gated = factor != 1.0 and probe_gain(row, factor) > gain
        return row["factors"][str(factor)]["cosine_min"] >= cosine and not gated

    clean_failed = [r["net"] for r in rows if not passes(r, 1.0)]
    let_through = [f"{r['net']} x{f:g}" for r in rows for f in distortions if _cost(r, str(f)) >= 1 and passes(r, f)]
    print(
        f"  the target's floor (cosine >= {cosine}, probe gain <= {gain}): clean cells failed "
        f"{clean_failed or 'none'}, costly distortions let through {let_through or 'none'}"
    )
