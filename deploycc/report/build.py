"""The report of ``deploycc build --report FILE.html``.

Sections: the pipeline stages with their times; each pass with its node counts before and after,
the ops it changed, every rewrite and every refusal; the legality map (which node runs on the
accelerator and which falls back, and the rule that decided, before and after the passes); the
numerics of the artifact against its reference. Input: :func:`page` takes the dict that
``deploycc.cli.cmd_build`` assembles from the build result (plain data, as ``--json`` prints).
"""

from __future__ import annotations

from . import figures
from .page import Html, Page, badge, details, esc, figure, note, paragraph, table, verdict_of

_LIST_INLINE = 12  # longer lists of rewrites or nodes fold into a <details> element


def page(d: dict) -> Page:
    v = d["verification"]
    failure = d.get("failure")
    if failure:
        verdict = "failed"
    elif v.get("status") == "not_run" or v.get("skipped"):
        verdict = "not run"
    else:
        verdict = verdict_of(d["ok"])
    facts = {
        "model": d["model"],
        "target": f"{d['target']} ({d['backend']})",
        "artifact": d["artifact"] if d["written"] else _not_written(d),
        "total time": f"{sum(d['stage_seconds'].values()):.2f} s",
        "toolchain": _toolchain(d.get("toolchain", {})),
    }
    p = Page("build", f"{d['model']} for {d['target']}", facts, verdict)
    if failure:
        p.add("Failed check", *failed_check_section(failure))
    p.add("Pipeline stages", *_stages(d["stage_seconds"]))
    p.add("Passes", *_passes(d["passes"]))
    p.add("Legality map", *legality_section(d.get("legality")))
    p.add("Numerics vs reference", *_numerics(v))
    if d.get("trt_offline_checks"):
        p.add("TensorRT offline checks", *_offline_checks(d["trt_offline_checks"]))
    if d.get("remaining"):
        if d["written"]:
            p.add(
                "Remaining on the device",
                table(["step", "command"], [[s.get("what", ""), s.get("command", "")] for s in d["remaining"]]),
            )
        else:
            p.add("Remaining on the device", note("nothing: the build failed, so no bundle was written to finish"))
    return p


def _not_written(d: dict) -> str:
    failure = d.get("failure") or {}
    why = f"the check {failure['check']} failed" if failure.get("check") else "the build failed"
    return f"none written: {why} (the output path {d['artifact']} was left as it was)"


def failed_check_section(failure: dict) -> list:
    """The failed check, its reason, and where its two sides part (the per-layer table)."""
    out = [Html(f"<p>{badge('failed')} <b>{esc(failure['check'])}</b>: {esc(failure['reason'])}</p>")]
    return out + layers_section(failure.get("layers"))


def layers_section(layers: dict | None) -> list:
    if not layers:
        return [note("no per-layer comparison: this check compares no two ONNX models")]
    if layers.get("status") == "not_run":
        return [Html(f"<p>{badge('not run')} per-layer comparison: {esc(layers['reason'])}</p>")]
    bad = layers.get("first_bad")
    tol = ", ".join(f"{k} {x:g}" for k, x in layers.get("tolerance", {}).items())
    head = (
        f"{layers['subject']} against {layers['reference']}, every intermediate tensor with the same name on "
        f"both sides, in topological order ({layers['compared']} compared; tolerance {tol}). "
    )
    head += (
        f"First layer out of tolerance: {bad['tensor']} ({bad['op']} {bad['node']})."
        if bad
        else "Every compared tensor holds: the difference arises outside the compared graph."
    )
    rows = [
        [
            r["tensor"],
            r["op"],
            r["node"],
            r["max_abs"],
            r["allowed_abs"],
            r["max_rel"],
            round(r["cosine"], 8),
            badge(verdict_of(r["ok"])),
            r.get("why", ""),
        ]
        for r in layers["rows"]
    ]
    headers = ["tensor", "op", "node", "max abs", "allowed", "max rel", "cosine", "verdict", "why"]
    body = table(headers, rows, "layers")
    out = [paragraph(head), _maybe_folded(f"{len(rows)} tensor(s)", body, len(rows))]
    if layers.get("rows_left_out"):
        out.append(note(f"{layers['rows_left_out']} more tensor(s) compared, not listed"))
    unmatched = [[u["tensor"], u["why"]] for u in layers.get("unmatched", [])]
    if unmatched:
        out.append(details(f"{len(unmatched)} tensor(s) not matched", table(["tensor", "why"], unmatched)))
    return out


def _offline_checks(checks: dict) -> list:
    rows = [
        [
            name,
            badge(verdict_of(None, c.get("status", "").replace("not_run", "not run"))),
            c.get("message") or c.get("reason", ""),
        ]
        for name, c in checks.items()
        if isinstance(c, dict)
    ]
    return [table(["check", "verdict", "message"], rows)]


def _toolchain(tools: dict) -> str | None:
    return ", ".join(f"{k} {v}" for k, v in sorted(tools.items()) if isinstance(v, (str, int, float))) or None


def _stages(times: dict) -> list:
    total = sum(times.values()) or 1.0
    fig = figures.hbars(list(times), {"seconds": list(times.values())}, "seconds", width=7.0)
    rows = [[name, round(s, 4), f"{100 * s / total:.1f} %"] for name, s in times.items()]
    return [
        figure(fig, "time per pipeline stage (load, simplify, passes, quantize, compile, verify)", "stages"),
        table(["stage", "seconds", "share"], rows),
    ]


def _passes(records: list[dict]) -> list:
    if not records:
        return [note("no passes ran (the target lists none, or --passes was empty)")]
    names = [r["name"] for r in records]
    fig = figures.hbars(
        names,
        {"nodes before": [r["nodes_before"] for r in records], "nodes after": [r["nodes_after"] for r in records]},
        "nodes",
        width=7.0,
    )
    rows = [
        [
            r["name"],
            "yes" if r["modified"] else "no",
            r["nodes_before"],
            r["nodes_after"],
            len(r["rewrites"]),
            len(r["refusals"]),
            round(1e3 * r["seconds"]["pass"], 2),
            _verified(r),
        ]
        for r in records
    ]
    out = [
        figure(fig, "graph nodes before and after each pass", "pass-nodes"),
        table(["pass", "modified", "nodes before", "nodes after", "rewrites", "refusals", "pass ms", "verified"], rows),
    ]
    for r in records:
        out.append(Html(f"<h3 id='pass-{r['name']}'>{r['name']}</h3>"))
        out += _pass_detail(r)
    return out


def _verified(r: dict) -> str:
    checks = r.get("verification") or []
    if not checks:
        return "not run (--no-verify-passes)" if r["modified"] else "nothing changed"
    worst = max(c["max_abs"] for c in checks)
    return f"{'passed' if all(c['ok'] for c in checks) else 'failed'}, max abs {worst:.3g}"


def _pass_detail(r: dict) -> list:
    out = []
    ops = sorted(set(r["ops_before"]) | set(r["ops_after"]))
    changed = [
        [op, r["ops_before"].get(op, 0), r["ops_after"].get(op, 0)]
        for op in ops
        if r["ops_before"].get(op, 0) != r["ops_after"].get(op, 0)
    ]
    out.append(table(["op", "before", "after"], changed) if changed else note("no op count changed"))
    rewrites = [[", ".join(w.get("nodes", [])), w.get("detail", "")] for w in r["rewrites"]]
    if rewrites:
        out.append(_maybe_folded(f"{len(rewrites)} rewrite(s)", table(["nodes", "rewrite"], rewrites), len(rewrites)))
    else:
        out.append(note("no rewrites"))
    refusals = [[x.get("node", ""), x.get("reason", "")] for x in r["refusals"]]
    if refusals:
        out.append(
            _maybe_folded(f"{len(refusals)} refusal(s)", table(["node left alone", "why"], refusals), len(refusals))
        )
    else:
        out.append(note("no refusals"))
    scalars = {
        k: v for k, v in r.get("stats", {}).items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    }
    legality = r.get("stats", {}).get("legality")
    if isinstance(legality, dict) and legality.get("verdict"):
        scalars["legality"] = legality["verdict"]
    if scalars:
        out.append(table(["statistic", "value"], [[k, v] for k, v in scalars.items()]))
    return out


def _maybe_folded(title: str, body: Html, n: int) -> Html:
    if n <= _LIST_INLINE:
        return Html(f"<p><b>{title}</b></p>{body}")
    return details(title, body)


def legality_section(leg: dict | None) -> list:
    """Per node accelerator or fallback before and after the passes: strips, counts, the fallbacks and why."""
    if leg is None:
        return [note("not run: the build recorded no legality map")]
    if "note" in leg:
        return [note(leg["note"] + " (no per-node accelerator / fallback map to draw)")]
    b, a = leg["before"]["summary"], leg["after"]["summary"]
    accel, fallback = b["accelerator"], b["fallback"]
    rows = {
        "before passes": [_kind(n["unit"], accel) for n in leg["before"]["nodes"]],
        "after passes": [_kind(n["unit"], accel) for n in leg["after"]["nodes"]],
    }
    fig = figures.unit_strips(
        rows,
        {"accelerator": f"runs on {accel}", "fallback": f"falls back to {fallback}", "folded": "not a layer (folded)"},
    )
    out = [
        figure(fig, f"each node in graph order: on {accel}, falling back to {fallback}, or not a layer", "legality"),
        table(
            ["graph", "layers", f"on {accel}", f"fall back to {fallback}"],
            [
                ["before passes", b["layers"], b["on_accelerator"], b["fallbacks"]],
                ["after passes", a["layers"], a["on_accelerator"], a["fallbacks"]],
            ],
        ),
    ]
    for when in ("before", "after"):
        falls = [
            [n["node"], n["op"], n["unit"], n["rule"], "; ".join(n["reasons"])]
            for n in leg[when]["nodes"]
            if _kind(n["unit"], accel) == "fallback"
        ]
        title = f"{len(falls)} node(s) falling back to {fallback} {when} the passes"
        if falls:
            out.append(_maybe_folded(title, table(["node", "op", "runs on", "rule", "why"], falls), len(falls)))
        else:
            out.append(note(f"{title}: every layer runs on {accel}"))
    refusals = [[r["name"], r["node"], r["reason"]] for r in leg.get("refusals", [])]
    if refusals:
        out.append(
            _maybe_folded(
                f"{len(refusals)} refusal(s) by the passes", table(["pass", "node", "why"], refusals), len(refusals)
            )
        )
    return out


def _kind(unit: str, accel: str) -> str:
    return "folded" if unit == "folded" else ("accelerator" if unit == accel else "fallback")


def _numerics(v: dict) -> list:
    if v.get("status") == "not_run":  # deploycc.core.verdict: why, and what would run it
        return [Html(f"<p>{badge('not run')} {esc(v['reason'])}; to run it: <code>{esc(v['needs'])}</code></p>")]
    if v.get("skipped"):
        return [Html(f"<p>{badge('not run')} {v['skipped']}</p>")]
    outs = v.get("outputs", [])
    facts = table(
        ["checked", "reference", "inputs", "tolerance"],
        [
            [
                v.get("subject", "the artifact"),
                v.get("reference", ""),
                v.get("inputs", ""),
                ", ".join(f"{k} {x:g}" for k, x in v.get("tolerance", {}).items()),
            ]
        ],
    )
    rows = [
        [
            o["output"],
            o["max_abs"],
            o["allowed_abs"],
            o["max_rel"],
            round(o["cosine"], 8),
            "—" if o.get("argmax_agreement") is None else o["argmax_agreement"],
            badge(verdict_of(o["ok"])),
        ]
        for o in outs
    ]
    out = [
        facts,
        table(["output", "max abs error", "allowed", "max rel", "cosine", "argmax agreement", "verdict"], rows),
    ]
    if outs:
        fig = figures.dots(
            [o["output"] for o in outs],
            {
                "max abs error": [max(o["max_abs"], 1e-12) for o in outs],
                "allowed": [max(o["allowed_abs"], 1e-12) for o in outs],
            },
            "absolute error (log scale)",
            colors=[figures.ARTIFACT, figures.LIMIT],
        )
        out.insert(1, figure(fig, "largest absolute error of each output against the allowed error", "numerics"))
    return out
