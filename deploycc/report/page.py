"""One HTML page: a header with the facts of the run and its verdict, sections, tables, figures.

Hand-written on purpose: a report is a dozen tags around matplotlib's PNGs, and a template engine
(Jinja2) would be one more dependency for no gain. Everything a caller passes is escaped unless it
is wrapped in :class:`Html` (markup this module or a report kind made). Figures and images are
embedded as ``data:image/png;base64`` URIs, so the page needs no other file and no network.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from pathlib import Path

import numpy as np

#: verdict -> badge colour; "not run" is a verdict of its own, never shown as passed
VERDICT_COLORS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "not run": "#6e7781",
    "unverified": "#9a6700",
    "error": "#9a6700",
    "skipped": "#6e7781",
}

STYLE = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa;--link:#0969da}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:var(--fg);
  margin:0 auto;max-width:1180px;padding:1.2em 2em}
a{color:var(--link)}
header{border-bottom:2px solid var(--line);padding-bottom:.6em}
.kind{color:var(--muted);text-transform:uppercase;letter-spacing:.08em;font-size:.8em}
h1{font-size:1.6em;margin:.1em 0 .3em}
h2{font-size:1.25em;border-bottom:1px solid var(--line);padding-bottom:.2em;margin-top:1.8em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
nav{margin:.6em 0;font-size:.95em} nav a{margin-right:1.1em;white-space:nowrap}
table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--head)} td.num{text-align:right;font-variant-numeric:tabular-nums}
table.facts th{width:12em}
figure{margin:.8em 0 1.4em} figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:.9em}
.badge{display:inline-block;padding:0 .7em;border-radius:1em;color:#fff;font-weight:600;font-size:.85em}
.note{color:var(--muted)} details{margin:.4em 0} summary{cursor:pointer}
code{background:var(--head);padding:0 .3em;border-radius:3px}
footer{margin-top:2.5em;padding-top:.5em;color:var(--muted);font-size:.85em;border-top:1px solid var(--line)}
"""


class Html(str):
    """Markup that is inserted as it is (everything else is escaped)."""


def esc(value) -> Html:
    return value if isinstance(value, Html) else Html(html.escape(str(value)))


def badge(verdict: str) -> Html:
    color = VERDICT_COLORS.get(verdict, "#59636e")
    return Html(
        f"<span class='badge verdict' data-verdict='{esc(verdict)}' style='background:{color}'>{esc(verdict)}</span>"
    )


def verdict_of(ok: bool | None, status: str | None = None) -> str:
    """The verdict of a gate or check: its own status when it has one, else passed/failed from
    ``ok``; ``None`` (no figure to judge) is "not run"."""
    if status:
        return status
    return "not run" if ok is None else ("passed" if ok else "failed")


def number(value, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    return f"{float(value):.{digits}g}"


def table(headers: list[str], rows: list[list], css: str = "") -> Html:
    """A table; numbers are right-aligned and formatted, strings escaped, :class:`Html` kept."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
                cells.append(f"<td class='num'>{number(cell)}</td>")
            else:
                cells.append(f"<td>{esc('—' if cell is None else cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls = f" class='{css}'" if css else ""
    return Html(f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def facts_table(facts: dict) -> Html:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts.items() if v is not None)
    return Html(f"<table class='facts'><tbody>{rows}</tbody></table>")


def note(text: str) -> Html:
    return Html(f"<p class='note'>{esc(text)}</p>")


def paragraph(*parts) -> Html:
    return Html("<p>" + "".join(esc(p) for p in parts) + "</p>")


def details(summary: str, *parts) -> Html:
    return Html(f"<details><summary>{esc(summary)}</summary>{''.join(esc(p) for p in parts)}</details>")


def link(href: str, text: str) -> Html:
    return Html(f"<a href='{html.escape(href, quote=True)}'>{esc(text)}</a>")


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure(fig, caption: str, name: str = "figure") -> Html:
    """A matplotlib Figure as an embedded PNG with its caption (the figure is drawn here)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return png_figure(buf.getvalue(), caption, name)


def png_figure(png: bytes, caption: str, name: str) -> Html:
    """PNG bytes as an embedded figure with its caption (``data-figure`` = ``name``)."""
    return Html(
        f"<figure data-figure='{esc(name)}'><img alt='{esc(caption)}' src='{png_uri(png)}'>"
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


class Page:
    """A report: ``kind`` (build, verify, ...), a title, facts and a verdict, then sections."""

    def __init__(self, kind: str, title: str, facts: dict | None = None, verdict: str | None = None):
        self.kind, self.title, self.facts, self.verdict = kind, title, facts or {}, verdict
        self.sections: list[tuple[str, str, list]] = []

    def add(self, title: str, *parts) -> None:
        """A section; ``parts`` are strings (escaped as paragraphs) or :class:`Html`."""
        body = [p if isinstance(p, Html) else paragraph(p) for p in parts if p is not None]
        self.sections.append((slug(title), title, body))

    def render(self) -> str:
        from deploycc import __version__

        verdict = f" {badge(self.verdict)}" if self.verdict else ""
        nav = "".join(f"<a href='#{sid}'>{esc(title)}</a>" for sid, title, _ in self.sections)
        sections = "".join(
            f"<section id='{sid}' data-section='{esc(title)}'><h2>{esc(title)}</h2>{''.join(body)}</section>"
            for sid, title, body in self.sections
        )
        return (
            f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>deploycc {esc(self.kind)}: {esc(self.title)}</title><style>{STYLE}</style></head>"
            f"<body data-report='{esc(self.kind)}'><header><div class='kind'>deploycc {esc(self.kind)} report</div>"
            f"<h1>{esc(self.title)}{verdict}</h1>{facts_table(self.facts)}<nav>{nav}</nav></header>"
            f"<main>{sections}</main><footer>written by deploycc {esc(__version__)}; self-contained: "
            f"figures are embedded, nothing is loaded from elsewhere.</footer></body></html>\n"
        )


def write_report(page: Page, path: str | Path) -> Path:
    """Write the page atomically (a temporary file beside it, renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(page.render(), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
