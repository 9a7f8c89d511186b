"""The drawing surface of the synthetic scene generator: labels and materials drawn together.

Every shape is drawn twice with the same Pillow polygon, once into the label image (a Cityscapes
labelId) and once into an object-id image whose id indexes a *material* (base colour and texture
amplitudes). ``render`` then turns the object ids into colours with shared noise fields, lighting,
shadows, blur and sensor noise, all vectorised; the label image is exact (no blur, no noise).
A camera maps world points (lateral X, height h, depth Z, in units of the camera height) to
pixels with a pinhole model, so the scene has true perspective at any output size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Camera:
    height: int  # image rows
    width: int  # image columns
    horizon: float  # row of the horizon
    center: float  # column of the vanishing point
    focal: float  # pixels

    def point(self, x: float, h: float, z: float) -> tuple[float, float]:
        """Pixel (column, row) of the world point at lateral ``x``, height ``h``, depth ``z``."""
        return self.center + self.focal * x / z, self.horizon + self.focal * (1.0 - h) / z

    def scale(self, z: float) -> float:
        """Pixels per world unit at depth ``z``."""
        return self.focal / z


@dataclass(frozen=True)
class Material:
    rgb: tuple[float, ...]  # red, green, blue
    fine: float = 0.04  # amplitude of pixel-scale noise (grain)
    coarse: float = 0.06  # amplitude of blotchy noise (stains, foliage clumps)
    sky: bool = False  # coloured by the sky gradient instead of ``rgb``


class Canvas:
    def __init__(self, camera: Camera, rng: np.random.Generator):
        self.camera, self.rng = camera, rng
        size = (camera.width, camera.height)
        self.labels = Image.new("L", size, 0)
        self.objects = Image.new("I", size, 0)
        self.shade = Image.new("L", size, 255)
        self._label_draw = ImageDraw.Draw(self.labels)
        self._object_draw = ImageDraw.Draw(self.objects)
        self._shade_draw = ImageDraw.Draw(self.shade)
        self.materials: list[Material] = [Material((0.0, 0.0, 0.0))]

    def _material(self, material: Material) -> int:
        self.materials.append(material)
        return len(self.materials) - 1

    def polygon(self, points, label: int, material: Material) -> None:
        pts = [(float(x), float(y)) for x, y in points]
        self._label_draw.polygon(pts, fill=label)
        self._object_draw.polygon(pts, fill=self._material(material))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, label: int, material: Material) -> None:
        box = [cx - rx, cy - ry, cx + rx, cy + ry]
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            box = [cx - 0.5, cy - 0.5, cx + 0.5, cy + 0.5]
        self._label_draw.ellipse(box, fill=label)
        self._object_draw.ellipse(box, fill=self._material(material))

    def world_quad(self, corners, label: int, material: Material) -> None:
        """A polygon given by world corners (x, h, z)."""
        self.polygon([self.camera.point(*c) for c in corners], label, material)

    def darken(self, points, level: int) -> None:
        """A shadow: scales the colours inside ``points`` by level/255; labels are untouched."""
        self._shade_draw.polygon([(float(x), float(y)) for x, y in points], fill=level)

    def render(
        self, sky_colors, exposure: float, tint, noise_sigma: float, blur: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(H x W x 3 uint8 image, H x W uint8 labelIds)."""
        h, w = self.camera.height, self.camera.width
        ids = np.asarray(self.objects, dtype=np.int32)
        table = np.array([m.rgb for m in self.materials], np.float32)
        fine_amp = np.array([m.fine for m in self.materials], np.float32)[ids]
        coarse_amp = np.array([m.coarse for m in self.materials], np.float32)[ids]
        img = table[ids]
        texture = 1.0 + fine_amp * self._noise(h, w, 1) + coarse_amp * self._noise(h, w, 12)
        img *= texture[..., None]
        sky = np.array([m.sky for m in self.materials])[ids]
        if sky.any():
            img[sky] = self._sky(sky_colors, h, w)[sky]
        img *= (np.asarray(self.shade, np.float32) / 255.0)[..., None]
        img *= np.float32(exposure) * np.asarray(tint, np.float32) * self._vignette(h, w)[..., None]
        picture = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        if blur > 0:
            picture = picture.filter(ImageFilter.GaussianBlur(blur))
        out = np.asarray(picture, np.float32) + self.rng.normal(0.0, noise_sigma, (h, w, 3)).astype(np.float32)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), np.asarray(self.labels).copy()

    def _noise(self, h: int, w: int, cell: int) -> np.ndarray:
        """Zero-mean noise of about unit spread with features ``cell`` pixels wide (bilinear value noise)."""
        scale = max(1, round(cell * h / 256)) if cell > 1 else 1
        gh, gw = h // scale + 2, w // scale + 2
        grid = self.rng.standard_normal((gh, gw)).astype(np.float32)
        if scale == 1:
            return grid[:h, :w]
        field = Image.fromarray(grid).resize((gw * scale, gh * scale), Image.Resampling.BILINEAR)
        return np.asarray(field)[:h, :w]

    def _sky(self, colors, h: int, w: int) -> np.ndarray:
        horizon_rgb, zenith_rgb, cloud = colors
        rows = np.clip((self.camera.horizon - np.arange(h, dtype=np.float32)) / max(self.camera.horizon, 1), 0, 1)
        grad = np.asarray(horizon_rgb, np.float32) + rows[:, None] * (np.asarray(zenith_rgb, np.float32) - horizon_rgb)
        clouds = np.clip(self._noise(h, w, 40) + self._noise(h, w, 12) * 0.5 - 0.3, 0, None) * cloud
        return grad[:, None, :] * (1 - clouds[..., None]) + 235.0 * clouds[..., None]

    def _vignette(self, h: int, w: int) -> np.ndarray:
        y = (np.arange(h, dtype=np.float32) - h / 2) / h
        x = (np.arange(w, dtype=np.float32) - w / 2) / w
        return 1.0 - 0.35 * (y[:, None] ** 2 + x[None, :] ** 2)
