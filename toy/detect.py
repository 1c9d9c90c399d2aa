"""Pixel-rule detectors for the toy dataset's concepts: colour, shape, dot and frame.

Images are [..., H, W, 3] in [0, 1] (ComfyUI's IMAGE layout), any size; the rules scale with the side.
"""

from __future__ import annotations

import numpy as np

from .data import COLOURS, FRAME_WIDTH, SIZE

FRAME_DARKNESS = 0.6       # a frame: the border's median brightness under this share of the background's
OBJECT_CONTRAST = 0.2      # an object pixel differs from the background by more than this in some channel
SATURATION = 0.3           # a coloured pixel: max − min channel above this
MIN_COLOURED = 12          # coloured pixels needed (at 32×32) to name a colour
WHITE = 0.8                # a dot pixel: every channel above this
MIN_DOT = 3                # white pixels needed (at 32×32) inside the object for a dot
SQUARE_FILL, CIRCLE_FILL = 0.88, 0.64  # object area / bounding-box area: square ≈ 1, circle ≈ π/4, triangle ≈ 1/2


def as_images(images) -> np.ndarray:
    """A float array [N, H, W, 3] from a tensor or array with or without a batch axis."""
    array = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images, dtype=np.float32)
    return array[None] if array.ndim == 3 else array


def border(image: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Pixels at distance [inner, outer) from the edge, as [K, 3]."""
    h, w = image.shape[:2]
    ring = np.zeros((h, w), bool)
    ring[inner:h - inner, inner:w - inner] = True
    ring[outer:h - outer, outer:w - outer] = False
    return image[ring]


def scale(image: np.ndarray) -> float:
    return image.shape[0] / SIZE


def has_frame(image: np.ndarray) -> bool:
    """The outer FRAME_WIDTH pixels are much darker than the background just inside them."""
    width = max(1, round(FRAME_WIDTH * scale(image)))
    edge, inside = (np.median(border(image, a, b).mean(axis=1)) for a, b in ((0, width), (width, 2 * width)))
    return bool(edge < FRAME_DARKNESS * inside)


def object_mask(image: np.ndarray) -> np.ndarray:
    """Pixels inside the frame region that stand out from the background (the median of the ring inside it)."""
    width = max(1, round(FRAME_WIDTH * scale(image)))
    background = np.median(border(image, width, 2 * width), axis=0)
    mask = np.abs(image - background).max(axis=-1) > OBJECT_CONTRAST
    mask[:width + 1], mask[-width - 1:], mask[:, :width + 1], mask[:, -width - 1:] = False, False, False, False
    return mask


def colour_of(image: np.ndarray) -> str | None:
    """The palette colour nearest to the mean of the saturated object pixels, or None when too few are saturated."""
    pixels = image[object_mask(image)]
    coloured = pixels[pixels.max(axis=1) - pixels.min(axis=1) > SATURATION]
    if len(coloured) < MIN_COLOURED * scale(image) ** 2:
        return None
    mean = coloured.mean(axis=0)
    return min(COLOURS, key=lambda name: float(np.square(mean - np.asarray(COLOURS[name])).sum()))


def shape_of(image: np.ndarray) -> str | None:
    """circle, square or triangle by how much of its bounding box the object fills; None without an object."""
    mask = object_mask(image)
    if mask.sum() < MIN_COLOURED * scale(image) ** 2:
        return None
    rows, cols = np.nonzero(mask)
    fill = mask.sum() / ((rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1))
    return "square" if fill >= SQUARE_FILL else "circle" if fill >= CIRCLE_FILL else "triangle"


def has_dot(image: np.ndarray) -> bool:
    """White pixels inside the object's bounding box."""
    mask = object_mask(image)
    if not mask.any():
        return False
    rows, cols = np.nonzero(mask)
    box = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return int((box.min(axis=-1) > WHITE).sum()) >= MIN_DOT * scale(image) ** 2


def detect(images) -> list[dict]:
    """Every detector on every image: [{"colour", "shape", "dot", "frame"}, ...]."""
    return [{"colour": colour_of(im), "shape": shape_of(im), "dot": has_dot(im), "frame": has_frame(im)}
            for im in as_images(images)]


def rate(images, concept: str) -> float:
    """The share of ``images`` in which ``concept`` is detected."""
    return float(np.mean([present(found, concept) for found in detect(images)]))


def present(found: dict, concept: str) -> bool:
    """Whether a concept word (a colour, a shape, "dot" or "frame") is in one image's detections."""
    if concept in COLOURS:
        return found["colour"] == concept
    if concept in ("dot", "frame"):
        return bool(found[concept])
    return found["shape"] == concept
