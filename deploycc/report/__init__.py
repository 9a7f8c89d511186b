"""Self-contained HTML reports a person opens in a browser, one style for every command.

``page`` assembles a report (one stylesheet, sections, tables, verdict badges; matplotlib figures
and images embedded as base64 PNG, so the file works offline and can be mailed or kept as a CI
artifact); ``figures`` draws the charts with matplotlib's object API (no pyplot state, so reports
can be drawn from any thread); ``overlay`` writes segmentation overlays with a legend. The report
kinds (``build``, ``verify``, ``bench``, ``inspect``) each turn the JSON a command already emits
into a page: every figure in a report is derived from data the command also prints with
``--json``.

May import ``deploycc.core`` only: whatever a report shows arrives as plain data (dicts, arrays,
a palette), so every stage above can write one.
"""

from .page import Page, write_report

__all__ = ["Page", "write_report"]
