"""Reading images and label PNGs, model preprocessing, and a bounded prefetch thread.

Decoding runs in one background thread that stays at most ``depth`` items ahead of the
consumer, so a long split streams in constant memory and PNG decoding (Pillow releases the GIL
while it inflates) overlaps with inference instead of adding to it.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deploycc.core.errors import UserError, first_line

IMAGENET = {
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "scale": 1 / 255,
    "layout": "NCHW",
    "color": "RGB",
}


# 8192 x 8192: above any camera's photo (a 50 MP phone, 8K video), below what a decoder could
# allocate on a small machine; a header declaring more is refused before anything is decoded
MAX_PIXELS = 1 << 26


def open_image(path: Path, what: str = "image", load: bool = True) -> Image.Image:
    """The image at ``path``, opened by Pillow only when it is a regular file whose header declares
    at most ``MAX_PIXELS`` pixels (checked before decoding); anything else is one line (UserError)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({os.strerror(exc.errno) if exc.errno else exc})") from None
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: cannot read {what} (not a regular file)")
    img = None
    try:
        img = Image.open(path)  # reads the header only
        width, height = img.size
        if width * height > MAX_PIXELS:
            raise UserError(
                f"{path}: {what} header declares {width}x{height} = {width * height} pixels, "
                f"more than deploycc decodes ({MAX_PIXELS}); resize it first"
            )
        if load:
            img.load()
    except Image.DecompressionBombError as exc:  # Pillow's own bound, met before ours could look
        raise UserError(
            f"{path}: {what} header declares more pixels than deploycc decodes ({MAX_PIXELS}): {first_line(exc)}"
        ) from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        if img is not None:
            img.close()
        raise UserError(f"{path}: cannot read {what} ({first_line(exc)})") from None
    except UserError:
        if img is not None:
            img.close()
        raise
    assert img is not None  # opened in the try above, or it raised
    return img


def _open(path: Path, what: str) -> Image.Image:
    return open_image(path, what)


def read_image(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB."""
    img = _open(path, "image")
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def read_label(path: Path) -> np.ndarray:
    """H x W integer label values exactly as stored (one channel: L, P or 16-bit)."""
    img = _open(path, "label")
    if img.mode not in ("L", "P", "I;16", "I"):
        raise UserError(
            f"{path}: label PNG must have one channel of class values, found mode {img.mode} "
            f"(a colour visualisation instead of the *_labelIds.png?)"
        )
    values = np.asarray(img)
    if values.dtype != np.uint8:
        if values.min(initial=0) < 0 or values.max(initial=0) > 255:
            bad = int(values.max()) if values.max() > 255 else int(values.min())
            raise UserError(f"{path}: label value {bad} is outside 0..255")
        values = values.astype(np.uint8)
    return values


def check_same_size(image: np.ndarray, label: np.ndarray, image_path: Path, label_path: Path) -> None:
    if image.shape[:2] != label.shape[:2]:
        raise UserError(
            f"{label_path}: label is {label.shape[1]}x{label.shape[0]} but its image "
            f"{image_path.name} is {image.shape[1]}x{image.shape[0]} (W x H)"
        )


def check_label_range(label: np.ndarray, num_classes: int, where: Path | str, ignore: int = 255) -> None:
    """Every value is a class index below ``num_classes`` or the ignore label."""
    counts = np.bincount(label.ravel(), minlength=256)
    counts[ignore] = 0
    bad = np.flatnonzero(counts[num_classes:]) + num_classes
    if bad.size:
        raise UserError(
            f"{where}: label value(s) {', '.join(map(str, bad[:5].tolist()))} outside the "
            f"{num_classes} classes (0..{num_classes - 1}, {ignore} = ignore)"
        )


def preprocess(image: np.ndarray, prep: dict, hw: tuple[int, int]) -> np.ndarray:
    """3 x h x w float32 network input: resize (bilinear) to ``hw``, then (x*scale - mean) / std."""
    if image.shape[:2] != tuple(hw):
        image = np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.Resampling.BILINEAR))
    if prep.get("color", "RGB") == "BGR":
        image = image[..., ::-1]
    mean = np.asarray(prep["mean"], np.float32)
    std = np.asarray(prep["std"], np.float32)
    x = image.astype(np.float32) * np.float32(prep["scale"])
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def resize_nearest(label: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if label.shape == tuple(hw):
        return label
    return np.asarray(Image.fromarray(label).resize((hw[1], hw[0]), Image.Resampling.NEAREST))


def prefetch(fn, items, depth: int = 4):
    """Yield ``fn(item)`` for each item, computed by a background thread at most ``depth`` ahead.

    An exception in ``fn`` is raised in the consumer at the item where it happened; a consumer
    that stops early stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    end = object()

    def work():
        try:
            for item in items:
                value = (True, fn(item))
                while not stop.is_set():
                    try:
                        q.put(value, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # forwarded to the consumer
            q.put((False, exc))
            return
        q.put((True, end))

    thread = threading.Thread(target=work, name="deploycc-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = q.get()
            if not ok:
                raise value
            if value is end:
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.1)
