"""One procedural street scene: layout of road, sidewalks, buildings, vegetation and objects.

A pinhole camera 1 unit above a flat street (world units = camera heights, about 1.4 m) looks
down the road. The road, sidewalks and terrain strips are ground-plane bands; facades are
vertical planes along both sides with window grids; a distant skyline closes the street. Trees,
poles (with traffic signs, lights or lamp arms), parked and moving cars and pedestrians stand at
random depths and are painted far to near. Shadows, sky gradient and clouds, exposure, tint,
vignetting, blur and sensor noise vary per scene. Everything is drawn from one
``numpy.random.Generator``, so a (seed, index) pair always gives the same scene.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .canvas import Camera, Canvas, Material
from .cityscapes import LABEL_IDS

ROAD, SIDEWALK, BUILDING = LABEL_IDS["road"], LABEL_IDS["sidewalk"], LABEL_IDS["building"]
FENCE, POLE, LIGHT, SIGN = LABEL_IDS["fence"], LABEL_IDS["pole"], LABEL_IDS["traffic light"], LABEL_IDS["traffic sign"]
VEGETATION, TERRAIN, SKY = LABEL_IDS["vegetation"], LABEL_IDS["terrain"], LABEL_IDS["sky"]
PERSON, CAR, EGO = LABEL_IDS["person"], LABEL_IDS["car"], LABEL_IDS["ego vehicle"]
Z_NEAR, Z_FAR = 0.3, 400.0

FACADES = [(185, 172, 150), (150, 150, 152), (158, 92, 72), (205, 200, 190), (118, 100, 82), (176, 160, 118)]
CAR_PAINT = [(190, 190, 195), (25, 25, 30), (225, 225, 228), (150, 25, 25), (30, 55, 120), (75, 78, 82), (40, 80, 60)]
CLOTHES = [(30, 30, 40), (40, 50, 90), (150, 30, 40), (210, 210, 200), (90, 70, 50), (60, 100, 60), (120, 120, 125)]
SKIN = [(230, 190, 160), (190, 140, 100), (120, 80, 55)]


def generate(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(image H x W x 3 uint8, labelIds H x W uint8) of one random street scene."""
    cam = Camera(
        height,
        width,
        horizon=rng.uniform(0.36, 0.5) * height,
        center=rng.uniform(0.42, 0.58) * width,
        focal=rng.uniform(0.9, 1.15) * width,
    )
    cv = Canvas(cam, rng)
    street = _street(rng)
    cv.polygon([(0, 0), (width, 0), (width, height), (0, height)], SKY, Material((0, 0, 0), 0.0, 0.0, sky=True))
    _ground(cv, street)
    _skyline(cv, rng)
    sun = rng.choice([-1, 1])
    for side in (-1, 1):
        _facades(cv, street, side, 1.08 if side == sun else 0.78)
        _fence(cv, street, side)
    objects: list[tuple[float, Callable[..., None], tuple]] = []
    for side in (-1, 1):
        objects += [(z, _tree, (street, side, z)) for z in rng.uniform(3, 110, rng.poisson(3))]
        objects += [(z, _pole, (street, side, z)) for z in rng.uniform(3, 60, rng.poisson(2.5))]
        objects += [(z, _person, (street, side, z)) for z in rng.uniform(3, 45, rng.poisson(2.2))]
    objects += [(z, _car, (x, z)) for x, z in _car_slots(rng, street)]
    for _, draw, args in sorted(objects, key=lambda o: -o[0]):
        draw(cv, *args)
    if rng.random() < 0.6:
        _hood(cv, rng)
    overcast = rng.random() < 0.3
    sky = (
        _jit(rng, (200, 210, 220) if overcast else (205, 220, 238), 12),
        _jit(rng, (165, 170, 180) if overcast else (80, 130, 205), 15),
        rng.uniform(0.0, 0.9),
    )
    return cv.render(
        sky,
        exposure=rng.uniform(0.72, 1.18),
        tint=rng.uniform(0.94, 1.06, 3),
        noise_sigma=rng.uniform(1.5, 5.0),
        blur=rng.uniform(0.3, 0.8) * height / 256,
    )


def _jit(rng, rgb, amount: float) -> tuple[float, ...]:
    return tuple(float(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in rgb)


def _street(rng) -> dict:
    s: dict[str, Any] = {
        "road": (rng.uniform(2.4, 6.5), rng.uniform(1.6, 3.5)),
        "walk": (rng.uniform(1.2, 3.0), rng.uniform(1.2, 3.0)),
    }
    s["setback"] = tuple(0.0 if rng.random() < 0.6 else rng.uniform(0.5, 3.0) for _ in range(2))
    s["asphalt"] = _jit(rng, (88, 88, 94), 18)
    s["paving"] = _jit(rng, rng.choice([(165, 160, 155), (180, 150, 140), (150, 150, 140)]), 15)
    s["grass"] = _jit(rng, rng.choice([(105, 140, 70), (135, 125, 90)]), 15)
    s["sun"] = 0.0 if rng.random() < 0.4 else rng.uniform(0.1, 0.7)  # shadow length per unit of height
    s["shadow_level"] = rng.uniform(0.45, 0.75)
    return s


def _edges(street, side: int) -> tuple[float, float, float]:
    """|X| of the curb, of the sidewalk's outer edge and of the building line on ``side``."""
    i = 0 if side < 0 else 1
    road = street["road"][i]
    return road, road + street["walk"][i], road + street["walk"][i] + street["setback"][i]


def _band(cv, x1: float, x2: float, z1: float, z2: float, label: int, material: Material) -> None:
    cv.world_quad([(x1, 0, z1), (x2, 0, z1), (x2, 0, z2), (x1, 0, z2)], label, material)


def _ground(cv, street) -> None:
    rng = cv.rng
    grass = Material(street["grass"], 0.10, 0.18)
    _band(cv, -300, 300, Z_NEAR, Z_FAR, TERRAIN, grass)
    left, right = _edges(street, -1), _edges(street, 1)
    _band(cv, -left[0], right[0], Z_NEAR, Z_FAR, ROAD, Material(street["asphalt"], 0.08, 0.07))
    for side, (curb, outer, _) in ((-1, left), (1, right)):
        paving = Material(street["paving"], 0.06, 0.08)
        _band(cv, side * curb, side * outer, Z_NEAR, Z_FAR, SIDEWALK, paving)
        _band(
            cv,
            side * curb,
            side * (curb + 0.15),
            Z_NEAR,
            Z_FAR,
            SIDEWALK,
            Material(_jit(rng, (195, 195, 190), 10), 0.03, 0.03),
        )
        joint = Material(tuple(c * 0.8 for c in street["paving"]), 0.03, 0.03)
        for z in np.arange(1.0, 40.0, 1.0):
            if cv.camera.scale(z) * 0.05 > 0.5:
                _band(cv, side * (curb + 0.15), side * outer, z, z + 0.05, SIDEWALK, joint)
    paint = Material(_jit(rng, (220, 220, 215), 10), 0.05, 0.05)
    if street["road"][0] > 2.0:
        for z in np.arange(rng.uniform(1, 4), 120, 6.0):
            _band(cv, -1.3, -1.2, z, z + 2.5, ROAD, paint)
    _band(cv, right[0] - 0.25, right[0] - 0.17, Z_NEAR, Z_FAR, ROAD, paint)
    if rng.random() < 0.3:
        z = rng.uniform(6, 25)
        for x in np.arange(-left[0] + 0.3, right[0] - 0.3, 1.0):
            _band(cv, x, x + 0.5, z, z + 2.0, ROAD, paint)


def _skyline(cv, rng) -> None:
    z, x = rng.uniform(150, 260), -90.0
    while x < 90:
        w, h = rng.uniform(4, 14), rng.uniform(2, 14)
        haze = _jit(rng, (150, 155, 165), 20)
        cv.world_quad([(x, 0, z), (x, h, z), (x + w, h, z), (x + w, 0, z)], BUILDING, Material(haze, 0.03, 0.05))
        x += w


def _facades(cv, street, side: int, light: float) -> None:
    rng = cv.rng
    _, _, line = _edges(street, side)
    x, z = side * line, rng.uniform(0.5, 6)
    while z < 170:
        length, height = rng.uniform(6, 30), rng.uniform(3, 16)
        if rng.random() < 0.12:
            z += length
            continue
        wall = tuple(c * light for c in _jit(rng, FACADES[rng.integers(len(FACADES))], 14))
        if light < 1.0 and street["sun"] > 0:  # the shaded side casts its shadow across the street
            reach = side * min(height * street["sun"], line + street["road"][0 if side > 0 else 1])
            cv.darken(
                [
                    cv.camera.point(*p)
                    for p in [(x, 0, z), (x - reach, 0, z), (x - reach, 0, z + length), (x, 0, z + length)]
                ],
                int(255 * street["shadow_level"]),
            )
        cv.world_quad(
            [(x, 0, z), (x, height, z), (x, height, z + length), (x, 0, z + length)],
            BUILDING,
            Material(wall, 0.05, 0.1),
        )
        if rng.random() < 0.85:
            _windows(cv, x, z, length, height, light)
        if rng.random() < 0.2:
            hedge = Material(_jit(rng, (60, 95, 45), 12), 0.15, 0.25)
            xh = x - side * 0.4
            cv.world_quad([(xh, 0, z), (xh, 0.6, z), (xh, 0.6, z + length), (xh, 0, z + length)], VEGETATION, hedge)
        z += length


def _windows(cv, x: float, z0: float, length: float, height: float, light: float) -> None:
    rng = cv.rng
    col, row = rng.uniform(1.8, 3.0), rng.uniform(2.0, 2.5)
    size_z, size_h = col * rng.uniform(0.4, 0.65), row * rng.uniform(0.4, 0.6)
    glass = _jit(rng, (55, 65, 85), 15)
    for zc in np.arange(z0 + col / 2, z0 + length - size_z, col):
        if cv.camera.scale(zc) * size_z < 0.8:
            break
        for h in np.arange(1.0, height - size_h - 0.3, row):
            pane = tuple(c * light * rng.uniform(0.7, 1.5) for c in glass)
            cv.world_quad(
                [(x, h, zc), (x, h + size_h, zc), (x, h + size_h, zc + size_z), (x, h, zc + size_z)],
                BUILDING,
                Material(pane, 0.03, 0.04),
            )


def _fence(cv, street, side: int) -> None:
    rng = cv.rng
    if rng.random() > 0.35:
        return
    _, outer, _ = _edges(street, side)
    x, z1 = side * (outer - 0.1), rng.uniform(2, 30)
    z2, h = z1 + rng.uniform(5, 30), rng.uniform(0.6, 0.95)
    metal = _jit(rng, rng.choice([(120, 125, 120), (60, 90, 70), (140, 110, 80)]), 12)
    cv.world_quad([(x, 0, z1), (x, h, z1), (x, h, z2), (x, 0, z2)], FENCE, Material(metal, 0.06, 0.08))
    dark = Material(tuple(c * 0.55 for c in metal), 0.03, 0.03)
    for z in np.arange(z1, z2, 0.3):
        if cv.camera.scale(z) * 0.3 < 2.5:
            break
        cv.world_quad([(x, 0, z), (x, h, z), (x, h, z + 0.05), (x, 0, z + 0.05)], FENCE, dark)


def _tree(cv, street, side: int, z: float) -> None:
    rng = cv.rng
    curb, outer, _ = _edges(street, side)
    x = side * rng.uniform(curb + 0.5, max(curb + 0.6, outer - 0.3))
    trunk, radius = rng.uniform(1.2, 2.6), rng.uniform(0.8, 2.0)
    bark = Material(_jit(rng, (85, 65, 45), 10), 0.08, 0.1)
    cv.world_quad(
        [(x - 0.08, 0, z), (x - 0.08, trunk + radius * 0.5, z), (x + 0.08, trunk + radius * 0.5, z), (x + 0.08, 0, z)],
        VEGETATION,
        bark,
    )
    leaves = _jit(rng, (70, 105, 40), 18)
    s = cv.camera.scale(z)
    for _ in range(rng.integers(3, 7)):
        dx, dh, r = rng.uniform(-0.6, 0.6) * radius, rng.uniform(0.2, 1.2) * radius, rng.uniform(0.5, 0.9) * radius
        cx, cy = cv.camera.point(x + dx, trunk + dh, z)
        shade = rng.uniform(0.75, 1.15)
        cv.ellipse(
            cx,
            cy,
            r * s,
            r * s * rng.uniform(0.8, 1.1),
            VEGETATION,
            Material(tuple(c * shade for c in leaves), 0.2, 0.3),
        )


def _pole(cv, street, side: int, z: float) -> None:
    rng = cv.rng
    curb = _edges(street, side)[0]
    x, top, w = side * (curb + 0.35), rng.uniform(3.0, 5.5), 0.045
    steel = Material(_jit(rng, rng.choice([(120, 122, 125), (45, 60, 50)]), 12), 0.04, 0.05)
    cv.world_quad([(x - w, 0, z), (x - w, top, z), (x + w, top, z), (x + w, 0, z)], POLE, steel)
    kind = rng.random()
    if kind < 0.45:
        _sign(cv, x, rng.uniform(2.0, min(2.8, top - 0.2)), z)
    elif kind < 0.7:
        box = Material(_jit(rng, (35, 35, 30), 8), 0.03, 0.03)
        cv.world_quad(
            [(x - 0.22, top - 1.05, z), (x - 0.22, top, z), (x + 0.22, top, z), (x + 0.22, top - 1.05, z)], LIGHT, box
        )
        lit = rng.integers(3)
        for i, rgb in enumerate([(230, 40, 30), (240, 180, 30), (40, 220, 90)]):
            cx, cy = cv.camera.point(x, top - 0.18 - 0.34 * i, z)
            color = rgb if i == lit else tuple(c * 0.3 for c in rgb)
            cv.ellipse(cx, cy, 0.12 * cv.camera.scale(z), 0.12 * cv.camera.scale(z), LIGHT, Material(color, 0.02, 0.02))
    elif kind < 0.85:
        arm = -side * rng.uniform(0.8, 1.6)
        cv.world_quad(
            [(x, top - 0.06, z), (x, top + 0.06, z), (x + arm, top + 0.06, z), (x + arm, top - 0.06, z)], POLE, steel
        )


def _sign(cv, x: float, h: float, z: float) -> None:
    rng = cv.rng
    size, s = rng.uniform(0.55, 0.85), cv.camera.scale(z)
    rim, face = [
        ((200, 30, 30), (235, 235, 230)),
        ((30, 70, 180), (30, 70, 180)),
        ((230, 195, 40), (235, 215, 60)),
        ((235, 235, 230), (30, 90, 50)),
    ][rng.integers(4)]
    cx, cy = cv.camera.point(x, h, z)
    r = size / 2 * s
    shape = rng.integers(3)
    if shape == 0:
        cv.ellipse(cx, cy, r, r, SIGN, Material(rim, 0.02, 0.03))
        cv.ellipse(cx, cy, r * 0.7, r * 0.7, SIGN, Material(face, 0.02, 0.03))
    elif shape == 1:
        cv.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], SIGN, Material(rim, 0.02, 0.03))
        cv.polygon(
            [(cx, cy - r * 0.45), (cx + r * 0.55, cy + r * 0.5), (cx - r * 0.55, cy + r * 0.5)],
            SIGN,
            Material(face, 0.02, 0.03),
        )
    else:
        cv.polygon(
            [(cx - r, cy - r * 0.7), (cx + r, cy - r * 0.7), (cx + r, cy + r * 0.7), (cx - r, cy + r * 0.7)],
            SIGN,
            Material(rim, 0.02, 0.03),
        )


def _car_slots(rng, street) -> list[tuple[float, float]]:
    left, right = street["road"]
    lanes = [(0.0, 0.6, 1), (right - 0.95, 2.0, 3)]
    if left > 3.0:
        lanes += [(-2.5, 1.5, 2), (-(left - 0.95), 1.5 if left > 5 else 0.0, 3)]
    slots = []
    for x, mean, cap in lanes:
        zs = sorted(rng.uniform(4, 70, min(cap, rng.poisson(mean))))
        kept = [z for i, z in enumerate(zs) if i == 0 or z - zs[i - 1] > 5.0]
        slots += [(x + rng.uniform(-0.15, 0.15), z) for z in kept]
    return slots


def _car(cv, x: float, z: float) -> None:
    rng = cv.rng
    w, length, roof = rng.uniform(1.2, 1.4), rng.uniform(2.8, 3.4), rng.uniform(0.95, 1.15)
    cv.darken(
        [
            cv.camera.point(*p)
            for p in [
                (x - w / 2 - 0.1, 0, z - 0.1),
                (x + w / 2 + 0.1, 0, z - 0.1),
                (x + w / 2 + 0.1, 0, z + length),
                (x - w / 2 - 0.1, 0, z + length),
            ]
        ],
        90,
    )
    paint = _jit(rng, CAR_PAINT[rng.integers(len(CAR_PAINT))], 10)
    body, glass, black = (
        Material(paint, 0.03, 0.05),
        Material(_jit(rng, (40, 45, 55), 10), 0.03, 0.06),
        Material((20, 20, 22), 0.05, 0.05),
    )
    if abs(x) > w / 2:
        xs = x - np.sign(x) * w / 2
        cv.world_quad([(xs, 0.12, z), (xs, 0.62, z), (xs, 0.62, z + length), (xs, 0.12, z + length)], CAR, body)
        cv.world_quad(
            [(xs, 0.62, z + 0.6), (xs, roof, z + 0.9), (xs, roof, z + length - 1.0), (xs, 0.62, z + length - 0.4)],
            CAR,
            glass,
        )
        for zw in (z + 0.6, z + length - 0.6):
            cx, cy = cv.camera.point(xs, 0.17, zw)
            r = 0.17 * cv.camera.scale(zw)
            cv.ellipse(cx, cy, r * 0.6, r, CAR, black)
    cv.world_quad([(x - w / 2, 0.0, z), (x - w / 2, 0.12, z), (x + w / 2, 0.12, z), (x + w / 2, 0.0, z)], CAR, black)
    cv.world_quad([(x - w / 2, 0.12, z), (x - w / 2, 0.62, z), (x + w / 2, 0.62, z), (x + w / 2, 0.12, z)], CAR, body)
    cv.world_quad(
        [
            (x - w / 2 + 0.05, 0.62, z),
            (x - w / 2 + 0.15, roof, z),
            (x + w / 2 - 0.15, roof, z),
            (x + w / 2 - 0.05, 0.62, z),
        ],
        CAR,
        body,
    )
    cv.world_quad(
        [
            (x - w / 2 + 0.12, 0.66, z),
            (x - w / 2 + 0.2, roof - 0.06, z),
            (x + w / 2 - 0.2, roof - 0.06, z),
            (x + w / 2 - 0.12, 0.66, z),
        ],
        CAR,
        glass,
    )
    lamp = Material((200, 30, 25) if x >= -1.3 else (235, 235, 215), 0.02, 0.02)
    for lx in (x - w / 2 + 0.05, x + w / 2 - 0.27):
        cv.world_quad([(lx, 0.45, z), (lx, 0.55, z), (lx + 0.22, 0.55, z), (lx + 0.22, 0.45, z)], CAR, lamp)


def _person(cv, street, side: int, z: float) -> None:
    rng = cv.rng
    curb, outer, _ = _edges(street, side)
    x, ph = side * rng.uniform(curb + 0.35, max(curb + 0.4, outer - 0.25)), rng.uniform(1.05, 1.3)
    pants, shirt = (
        Material(_jit(rng, CLOTHES[rng.integers(len(CLOTHES))], 12), 0.05, 0.05),
        Material(_jit(rng, CLOTHES[rng.integers(len(CLOTHES))], 12), 0.05, 0.05),
    )
    skin, step = Material(_jit(rng, SKIN[rng.integers(len(SKIN))], 10), 0.03, 0.03), rng.uniform(-0.06, 0.06) * ph
    for lx in (-0.1, 0.015):
        cv.world_quad(
            [
                (x + lx * ph + step, 0, z),
                (x + lx * ph, 0.5 * ph, z),
                (x + (lx + 0.085) * ph, 0.5 * ph, z),
                (x + (lx + 0.085) * ph - step, 0, z),
            ],
            PERSON,
            pants,
        )
    half = 0.13 * ph
    cv.world_quad(
        [
            (x - half * 0.85, 0.47 * ph, z),
            (x - half, 0.82 * ph, z),
            (x + half, 0.82 * ph, z),
            (x + half * 0.85, 0.47 * ph, z),
        ],
        PERSON,
        shirt,
    )
    arm = 0.045 * ph
    for ax in (x - half - arm, x + half):
        cv.world_quad(
            [(ax, 0.5 * ph, z), (ax, 0.8 * ph, z), (ax + arm, 0.8 * ph, z), (ax + arm, 0.5 * ph, z)], PERSON, shirt
        )
    cx, cy = cv.camera.point(x, 0.9 * ph, z)
    r = 0.075 * ph * cv.camera.scale(z)
    cv.ellipse(cx, cy, r * 0.85, r, PERSON, skin)
    cv.ellipse(cx, cy - r * 0.45, r * 0.85, r * 0.6, PERSON, Material(_jit(rng, (40, 30, 25), 15), 0.04, 0.04))


def _hood(cv, rng) -> None:
    h, w = cv.camera.height, cv.camera.width
    top, cx = rng.uniform(0.06, 0.12) * h, rng.uniform(0.4, 0.6) * w
    xs = np.linspace(-0.05 * w, 1.05 * w, 24)
    ys = h - top * (1 - 0.5 * ((xs - cx) / (0.6 * w)) ** 2)
    pts = [*zip(xs, ys), (1.05 * w, h + 2), (-0.05 * w, h + 2)]
    cv.polygon(pts, EGO, Material(_jit(rng, (45, 45, 50), 15), 0.03, 0.12))
