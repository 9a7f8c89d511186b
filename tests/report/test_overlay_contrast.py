"""Overlays stay readable on any photo: a class colour close to the photo under it is moved away in
lightness, and every region is outlined in black or white, whichever stands out there."""

from __future__ import annotations

import numpy as np

from deploycc.data.palette import palette
from deploycc.report.overlay import MIN_CONTRAST, blend, boundaries, contrasting_colors, overlay

BUILDING, CAR = 2, 13


def facade(grey: int = 75) -> tuple[np.ndarray, np.ndarray]:
    """A grey facade (building) over a car-sized patch in the lower left: 32 x 64."""
    image = np.full((32, 64, 3), grey, np.uint8)
    classes = np.full((32, 64), BUILDING, np.uint8)
    classes[20:, :16] = CAR
    image[20:, :16] = (200, 200, 200)
    return image, classes


def test_building_grey_on_a_grey_facade_gets_a_colour_that_shows():
    image, classes = facade()
    colors = palette(19)
    assert np.linalg.norm(image[0, 0].astype(float) - colors[BUILDING]) < MIN_CONTRAST  # the Cityscapes grey is lost
    variant = contrasting_colors(image, classes, colors)
    assert np.linalg.norm(image[0, 0].astype(float) - variant[BUILDING]) >= MIN_CONTRAST
    assert tuple(variant[CAR]) == tuple(colors[CAR])  # a colour that already stands out is kept
    untouched = [c for c in range(19) if c not in (BUILDING, CAR)]
    assert np.array_equal(variant[untouched], colors[untouched])  # classes absent from the photo too
    before = blend(image, colors[classes])
    after = overlay(image, classes, variant)
    assert np.abs(before[5, 30].astype(int) - image[5, 30]).max() < 15  # invisible with the plain palette
    assert np.abs(after[5, 30].astype(int) - image[5, 30]).max() >= 30


def test_a_dark_region_gets_a_lighter_variant_and_a_light_one_a_darker():
    colors = palette(19)
    dark, classes = facade(grey=40)
    light = np.full_like(dark, 200)
    colors[BUILDING] = (60, 60, 60)
    assert contrasting_colors(dark, classes, colors)[BUILDING].mean() > 60
    colors[BUILDING] = (190, 190, 190)
    assert contrasting_colors(light, classes, colors)[BUILDING].mean() < 190


def test_every_region_is_outlined_in_a_contrasting_shade():
    image, classes = facade()
    edge = boundaries(classes)
    assert edge[19, :16].all() and edge[20:, 15].all() and edge.sum() == 16 + 12
    out = overlay(image, classes, palette(19))
    assert (out[19, :15] == 255).all()  # a dark photo there: white lines
    assert (out[25, 15] == 0).all()  # the car's light patch: a black line
