"""The report of ``deploycc bench --report FILE.html``.

Sections: the latency distribution (every timed run as a histogram with the median, p90 and p99
marked, and in run order, where drift or interference from other processes shows), its summary
statistics and the protocol; the per-layer profile where the bench result carries one
(``{"backend", "layers": [{"name", "op_type", "layer", "unit", "ms"}...]}``): time per searchable
layer and the slowest nodes as bars; otherwise the section says why it did not run. Input: the
dict ``deploycc bench --json`` prints (its ``samples_ms`` list holds every run).
"""

from __future__ import annotations

from . import figures
from .page import Html, Page, badge, facts_table, figure, note, table

_TOP_NODES = 25


def page(d: dict) -> Page:
    lat, machine = d["latency"], d.get("machine", {})
    facts = {
        "artifact": d["artifact"],
        "target": d.get("target"),
        "machine": f"{machine.get('cpu_model', machine.get('machine', '?'))}, {machine.get('cpus', '?')} CPUs; "
        f"load average {machine.get('load_average', '?')} (others' work slows a run)"
        if machine
        else None,
        "threads": "runtime default" if lat.get("threads") == 0 else lat.get("threads"),
        "clock": lat.get("clock", "wall"),
    }
    if d.get("remote"):
        facts["device"] = str(d["remote"])
    p = Page("bench", f"latency of {d['artifact']}", facts)
    p.add("Latency distribution", *_distribution(d))
    p.add("Per-layer profile", *_profile(d.get("profile"), d.get("profile_not_run")))
    return p


def _distribution(d: dict) -> list:
    lat, samples = d["latency"], d.get("samples_ms") or []
    stats = table(
        ["median ms", "p90 ms", "p99 ms", "min ms", "mean ms", "stdev ms", "runs", "median settled"],
        [
            [
                lat["median_ms"],
                lat["p90_ms"],
                lat["p99_ms"],
                lat["min_ms"],
                lat["mean_ms"],
                lat.get("stdev_ms"),
                lat["runs"],
                "yes" if lat["stable"] else "no (limit reached)",
            ]
        ],
    )
    out = [stats]
    if samples:
        marks = {"median": lat["median_ms"], "p90": lat["p90_ms"], "p99": lat["p99_ms"]}
        out.insert(
            0,
            figure(
                figures.histogram(samples, marks, "latency per run (ms)"),
                f"distribution of {len(samples)} timed runs (after the warm-up)",
                "latency-histogram",
            ),
        )
        out.insert(1, figure(figures.run_sequence(samples, "ms"), "every timed run in order", "latency-runs"))
    else:
        out.append(
            note(
                "distribution not drawn: this result carries summary statistics only (a remote bench "
                "returns no individual runs)"
            )
        )
    if d.get("protocol"):
        out.append(Html("<h3>protocol</h3>"))
        out.append(facts_table(d["protocol"]))
    return out


def _profile(profile: dict | None, reason: str | None) -> list:
    if not profile or not profile.get("layers"):
        why = reason or "the bench result carries no per-layer profile"
        return [Html(f"<p>{badge('not run')} per-layer profile: {why}</p>")]
    rows = profile["layers"]
    groups: dict[str, float] = {}
    for r in rows:  # network order: the first node of a layer places it
        key = (
            "not traced to a layer"
            if r.get("layer") is None
            else (r["layer"] if r.get("unit") in (None, r["layer"]) else f"{r['layer']} ({r['unit']})")
        )
        groups[key] = groups.get(key, 0.0) + float(r["ms"])
    total = sum(groups.values()) or 1.0
    out = [
        figure(
            figures.hbars(list(groups), {"ms per run": list(groups.values())}, "ms per run"),
            f"time per layer on {profile.get('backend', '?')} (sum of its nodes), network order",
            "profile-layers",
        )
    ]
    top = sorted(rows, key=lambda r: -float(r["ms"]))[:_TOP_NODES]
    out.append(
        figure(
            figures.hbars(
                [f"{r['name']} ({r['op_type']})"[-60:] for r in top],
                {"ms per run": [float(r["ms"]) for r in top]},
                "ms per run",
            ),
            f"the {len(top)} slowest nodes",
            "profile-nodes",
        )
    )
    out.append(
        table(
            ["layer", "ms per run", "share"], [[k, round(v, 4), f"{100 * v / total:.1f} %"] for k, v in groups.items()]
        )
    )
    return out
