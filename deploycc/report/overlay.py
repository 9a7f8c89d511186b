"""Segmentation pictures for people: a photo blended with its colour-coded class map, beside a legend.

The picture keeps the photo's own pixels (placed unresampled with ``Figure.figimage``); a photo too
short for its legend is enlarged by a whole factor (nearest neighbour), so every legend entry stays
readable and no pixel is blurred. The legend is matplotlib's. ``disagreement`` shows where two
class maps differ: the photo in grey, the differing pixels in red.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DISAGREE = (230, 20, 60)
_ROW_PX, _LEGEND_PX, _DPI = 21, 230, 100


def blend(image: np.ndarray, colors: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """``alpha`` of the class colours over the photo (both H x W x 3 uint8)."""
    mixed = (1.0 - alpha) * image.astype(np.float32) + alpha * colors.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


# Mean RGB distance between a class colour and the photo pixels it covers below which the blended
# colour is lost (Cityscapes' building, 70,70,70, on a grey facade is about 20 away).
MIN_CONTRAST = 120.0


def contrasting_colors(image: np.ndarray, class_map: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """A palette variant for one photo: each class colour too close to the photo pixels it covers
    is moved in lightness away from them (lighter on a dark region, darker on a light one) until it
    stands ``MIN_CONTRAST`` apart, keeping its hue; the others stay as they are."""
    out = colors.copy()
    for c in np.unique(class_map):
        if c >= len(colors):
            continue
        under = image[class_map == c].astype(np.float32).mean(axis=0)
        color = colors[c].astype(np.float32)
        if np.linalg.norm(under - color) >= MIN_CONTRAST:
            continue
        toward = np.full(3, 255.0 if under.mean() < 128 else 0.0, dtype=np.float32)
        for t in np.linspace(0.1, 1.0, 10):
            moved = color + t * (toward - color)
            if np.linalg.norm(under - moved) >= MIN_CONTRAST:
                break
        out[c] = np.clip(moved + 0.5, 0, 255).astype(np.uint8)
    return out


def boundaries(class_map: np.ndarray) -> np.ndarray:
    """H x W bool: pixels whose class differs from the pixel to their right or below."""
    edge = np.zeros(class_map.shape, dtype=bool)
    edge[:, :-1] |= class_map[:, :-1] != class_map[:, 1:]
    edge[:-1, :] |= class_map[:-1, :] != class_map[1:, :]
    return edge


def overlay(image: np.ndarray, class_map: np.ndarray, colors: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The class colours blended over the photo, each region outlined in black or white, whichever
    stands out against the photo there, so a region shows even where its colour matches the photo."""
    from_palette = colors[np.minimum(class_map, len(colors) - 1)]
    colored = np.where((class_map < len(colors))[..., None], from_palette, 0).astype(np.uint8)
    out = blend(image, colored, alpha)
    edge = boundaries(class_map)
    light = image.astype(np.float32).mean(axis=2) >= 128
    out[edge & light] = (0, 0, 0)
    out[edge & ~light] = (255, 255, 255)
    return out


def disagreement(image: np.ndarray, differ: np.ndarray) -> np.ndarray:
    """The photo in dimmed grey with the pixels where ``differ`` is true in red."""
    grey = (0.35 * image.astype(np.float32).mean(axis=2) + 110).astype(np.uint8)
    out = np.repeat(grey[..., None], 3, axis=2)
    out[differ] = DISAGREE
    return out


def picture_with_legend(picture: np.ndarray, legend: list[tuple[str, tuple[int, int, int]]], title: str) -> Figure:
    """``picture`` (H x W x 3 uint8) at its own pixels, the legend in a panel to its right."""
    h, _w = picture.shape[:2]
    need = _ROW_PX * (len(legend) + 2) + 20
    scale = min(8, max(1, math.ceil(need / h)))
    if scale > 1:
        picture = np.repeat(np.repeat(picture, scale, axis=0), scale, axis=1)
    ph, pw = picture.shape[:2]
    fig_w, fig_h = pw + _LEGEND_PX, max(ph, need)
    from matplotlib.figure import Figure  # here, not at import: commands that draw nothing skip it
    from matplotlib.patches import Patch

    fig = Figure(figsize=(fig_w / _DPI, fig_h / _DPI), dpi=_DPI)
    fig.figimage(picture, xo=0, yo=fig_h - ph, origin="upper")
    # matplotlib takes an RGB array as a colour; its stubs list only tuples.
    handles = [
        Patch(facecolor=np.asarray(c) / 255.0, edgecolor="#444", label=name)  # type: ignore[arg-type]
        for name, c in legend
    ]
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(pw / fig_w, 1.0),
        fontsize=9,
        title=title,
        title_fontsize=9,
        frameon=False,
        borderaxespad=0.4,
    )
    return fig


def save_picture(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=_DPI, format="png")
