"""The charts of the reports, drawn with matplotlib's object API (``matplotlib.figure.Figure``).

No pyplot: a ``Figure`` made directly owns its Agg canvas and leaves no global state behind, so
reports can be drawn from any thread and never open a window. One palette for every report:
the artifact in blue, its reference in orange, a limit in red.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ARTIFACT, REFERENCE, LIMIT, MUTED = "#4c72b0", "#dd8452", "#cf222e", "#8c959f"
UNIT_COLORS = {"accelerator": "#2da44e", "fallback": "#fb8f44", "folded": "#d0d7de"}


def new(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure  # here, not at import: commands that draw nothing skip it

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def hbars(
    labels: list[str],
    series: dict[str, list[float | None]],
    xlabel: str,
    colors: list[str] | None = None,
    log: bool = False,
    width: float = 8.0,
) -> Figure:
    """Horizontal bars, one row per label, one bar per series (side by side), top to bottom."""
    n, k = len(labels), max(1, len(series))
    fig, ax = new(width, max(1.6, 0.22 * n * max(1, k * 0.75) + 0.9))
    y = np.arange(n)
    height = 0.8 / k
    colors = colors or [ARTIFACT, REFERENCE, MUTED]
    for i, (name, values) in enumerate(series.items()):
        vals = [np.nan if v is None else v for v in values]
        ax.barh(y + (i - (k - 1) / 2) * height, vals, height=height, color=colors[i % len(colors)], label=name)
    ax.set_yticks(y, labels, fontsize=8 if n > 25 else 9)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if log:
        ax.set_xscale("log")
    if k > 1:
        fig.legend(fontsize="small", loc="outside right upper")
    ax.grid(axis="x", alpha=0.3)
    return fig


def dots(
    labels: list[str],
    series: dict[str, list[float]],
    xlabel: str,
    colors: list[str],
    markers: str = "o|",
    log: bool = True,
) -> Figure:
    """One row per label, one marker per series: values that differ by orders of magnitude (an error
    and its limit) stay comparable on a log axis, where bars would start at an arbitrary floor."""
    fig, ax = new(7.0, max(1.4, 0.35 * len(labels) + 0.9))
    y = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        ax.scatter(
            values,
            y,
            color=colors[i % len(colors)],
            marker=markers[i % len(markers)],
            s=90,
            label=name,
            zorder=3,
            linewidths=2.5,
        )
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize="small", loc="outside right upper")
    return fig


def histogram(samples: list[float], marks: dict[str, float], xlabel: str) -> Figure:
    """Distribution of ``samples`` with vertical lines at named statistics."""
    fig, ax = new(7.5, 3.2)
    ax.hist(samples, bins=min(40, max(5, len(samples) // 2)), color=ARTIFACT, alpha=0.85)
    styles = ["-", "--", ":", "-."]
    for i, (name, value) in enumerate(marks.items()):
        ax.axvline(
            value, color=LIMIT if i == 0 else MUTED, linestyle=styles[i % len(styles)], label=f"{name} {value:.3g}"
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("runs")
    ax.legend(fontsize="small")
    return fig


def run_sequence(samples: list[float], ylabel: str) -> Figure:
    """Every timed run in order: drift, warm-up effects and interference show as a trend or spikes."""
    fig, ax = new(7.5, 2.4)
    ax.plot(np.arange(1, len(samples) + 1), samples, marker=".", color=ARTIFACT, linewidth=0.8)
    ax.set_xlabel("run")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig


def heatmap(matrix: np.ndarray, labels: list[str], xlabel: str, ylabel: str, title: str) -> Figure:
    """Row-normalised matrix (each row sums to 1) with the share printed in every non-empty cell."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    n = len(labels)
    fig, ax = new(max(5.0, 0.42 * n + 2.5), max(4.5, 0.38 * n + 2.0))
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(np.arange(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n), labels, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    for (i, j), v in np.ndenumerate(share):
        if m[i, j] > 0 and v >= 0.005:
            ax.text(
                j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6, color="white" if v > 0.5 else "#1f2328"
            )
    fig.colorbar(im, ax=ax, shrink=0.7, label="share of the row's pixels")
    return fig


def unit_strips(rows: dict[str, list[str]], names: dict[str, str]) -> Figure:
    """One strip per row (e.g. before / after the passes), one cell per node in graph order, coloured
    by the unit it runs on (``accelerator``, ``fallback``, ``folded``); ``names`` labels the units."""
    from matplotlib.patches import Patch

    fig, ax = new(10.0, 0.6 * len(rows) + 1.3)
    for r, (_label, units) in enumerate(rows.items()):
        for kind in UNIT_COLORS:
            cells = [(i, 1) for i, u in enumerate(units) if u == kind]
            if cells:
                ax.broken_barh(cells, (r - 0.4, 0.8), facecolors=UNIT_COLORS[kind])
    ax.set_yticks(np.arange(len(rows)), list(rows))
    ax.invert_yaxis()
    ax.set_xlabel("node (graph order)")
    ax.set_xlim(0, max(1, max(len(u) for u in rows.values())))
    fig.legend(
        handles=[Patch(color=UNIT_COLORS[k], label=names.get(k, k)) for k in UNIT_COLORS],
        loc="outside lower center",
        ncols=3,
        fontsize="small",
        frameon=False,
    )
    return fig
