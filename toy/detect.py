"""Pixel-rule detectors for the toy world's concepts, and the rule that decides whether a picture is clean.

Images are [..., H, W, 3] in [0, 1] (ComfyUI's IMAGE layout), any size; pixel counts scale with (H / 32)².

A picture is **clean** when (1) the background is smooth: a plane fitted per channel to the background pixels
leaves a residual RMS under NOISE; (2) exactly one object stands out: the pixels more than FOREGROUND from that
plane form one 8-connected component clear of the image edge, with at most STRAY pixels elsewhere; and (3) the
object has one body: at least MIN_BODY saturated pixels, of which at least ONE_COLOUR name the same palette colour.
Only a clean picture gets a vote: ``detect`` returns None for any other, so noise, smears and two-object pictures
never count for or against a concept.

On a clean picture each pixel of the object is body (saturated), dark (hat, legs), bright (eyes) or an edge mix:
- colour: the palette colour whose chromaticity rgb / max(rgb) is nearest to most body pixels;
- shape: the shape whose mask, at the body's area and centroid, overlaps the body best (IoU);
- texture: striped when over STRIPED of the inner body pixels (not next to the background or a dark part) are a
  darker shade of the body colour, brightness under SHADE of the body's 90th percentile;
- hat / legs: at least MIN_HAT / MIN_LEGS dark pixels of the object above / below the body's middle row;
- eyes: at least MIN_EYES bright pixels (min channel over BRIGHT) inside the body's rows.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .data import COLOURS, PARTS, SHAPES, SIZE, TEXTURES, shape_mask

NOISE = 0.035          # background residual RMS above this: not clean
FOREGROUND = 0.12      # a pixel of the object differs from the background plane by more than this in some channel
STRAY = 2              # foreground pixels (at 32×32) allowed outside the object
MIN_BODY = 20          # saturated pixels (at 32×32) for a body
ONE_COLOUR = 0.85      # share of body pixels that must name the majority colour
SATURATED = 0.22       # a body pixel: max − min channel above this, and not dark
DARK = 0.25            # a dark pixel (hat, legs): every channel under this
BRIGHT = 0.62          # a bright pixel (eyes): every channel over this
SHADE, STRIPED = 0.78, 0.2
MIN_HAT, MIN_LEGS, MIN_EYES = 8, 4, 2
CHROMA = {name: np.asarray(rgb) / max(rgb) for name, rgb in COLOURS.items()}


def as_images(images) -> np.ndarray:
    """A float array [N, H, W, 3] from a tensor or array with or without a batch axis."""
    array = np.asarray(images.detach().cpu().float() if hasattr(images, "detach") else images, dtype=np.float32)
    return array[None] if array.ndim == 3 else array


def background_plane(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(plane [H, W, 3], the pixels it was fitted to [H, W]): least squares a + b·u + c·v per channel over the
    unsaturated pixels within 0.1 of the edge ring's median."""
    h, w = image.shape[:2]
    ring = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    near = np.abs(image - np.median(ring, axis=0)).max(axis=-1) < 0.1
    fit = near & (np.ptp(image, axis=-1) <= SATURATED)
    if fit.sum() < 3:
        fit = near
    v, u = np.mgrid[0:h, 0:w] / max(h, w)
    design = np.stack([np.ones(fit.sum()), u[fit], v[fit]], axis=1)
    coef, *_ = np.linalg.lstsq(design, image[fit], rcond=None)
    return coef[0] + u[..., None] * coef[1] + v[..., None] * coef[2], fit


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The 8-connected components of a boolean mask, largest first, each as a boolean mask."""
    seen, found = np.zeros_like(mask), []
    h, w = mask.shape
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        part, queue = np.zeros_like(mask), deque([start])
        seen[start] = part[start] = True
        while queue:
            r, c = queue.popleft()
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and mask[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = part[rr, cc] = True
                        queue.append((rr, cc))
        found.append(part)
    return sorted(found, key=lambda m: -int(m.sum()))


def dilate(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel in all 8 directions."""
    grown = np.pad(mask, 1)
    return np.max([grown[1 + dr:grown.shape[0] - 1 + dr, 1 + dc:grown.shape[1] - 1 + dc]
                   for dr in (-1, 0, 1) for dc in (-1, 0, 1)], axis=0)


def nearest_colour(pixels: np.ndarray) -> np.ndarray:
    """For [K, 3] pixels, the index in COLOURS of the nearest palette chromaticity rgb / max(rgb)."""
    chroma = pixels / np.maximum(pixels.max(axis=-1, keepdims=True), 1e-6)
    palette = np.stack(list(CHROMA.values()))
    return np.square(chroma[:, None] - palette[None]).sum(-1).argmin(axis=1)


def shape_of(body: np.ndarray) -> str:
    """The shape whose mask (data.shape_mask) of the body's area and centroid overlaps the body best, by IoU."""
    rows, cols = np.nonzero(body)
    area, y, x = len(rows), rows.mean(), cols.mean()
    v, u = np.mgrid[0:body.shape[0], 0:body.shape[1]]
    sizes = {"circle": np.sqrt(area / np.pi), "square": np.sqrt(area) / 1.7,
             "triangle": np.sqrt(area / (0.75 * np.sqrt(3))) / 1.2}  # disc πs², square (1.7s)², triangle ¾√3·(1.2s)²
    iou = {}
    for shape, size in sizes.items():
        template = shape_mask(shape, x, y, size, u, v)
        iou[shape] = (template & body).sum() / (template | body).sum()
    return max(iou, key=iou.get)


def detect_one(image: np.ndarray) -> dict | None:
    """The concepts of one clean picture {"shape", "colour", "texture", "hat", "eyes", "legs"}, or None."""
    h, w = image.shape[:2]
    area = (h / SIZE) * (w / SIZE)
    plane, _ = background_plane(image)
    foreground = np.abs(image - plane).max(axis=-1) > FOREGROUND
    parts = components(foreground)
    if not parts:
        return None
    obj = parts[0]
    quiet = ~dilate(obj) & ~foreground
    noise = float(np.sqrt(np.square(image - plane)[quiet].mean())) if quiet.any() else np.inf
    if noise > NOISE or foreground.sum() - obj.sum() > STRAY * area:
        return None
    if obj[0].any() or obj[-1].any() or obj[:, 0].any() or obj[:, -1].any():
        return None
    high, low = image.max(axis=-1), image.min(axis=-1)
    dark = obj & (high < DARK)
    bright = obj & (low > BRIGHT)
    body = obj & (high - low > SATURATED) & ~dark
    if body.sum() < MIN_BODY * area:
        return None
    votes = np.bincount(nearest_colour(image[body]), minlength=len(COLOURS))
    if votes.max() < ONE_COLOUR * body.sum():
        return None
    rows = np.nonzero(body.any(axis=1))[0]
    top, bottom = rows.min(), rows.max()
    middle = (top + bottom) / 2
    row = np.arange(h)[:, None]
    inside_rows = (row >= top) & (row <= bottom)
    plain_body = body & ~dilate(dark | ~obj)
    value = high[plain_body]
    shaded = float((value < SHADE * np.percentile(value, 90)).mean()) if value.size else 0.0
    return {"shape": shape_of(body | (bright & inside_rows)), "colour": list(COLOURS)[int(votes.argmax())],
            "texture": "striped" if shaded > STRIPED else "plain",
            "hat": bool((dark & (row < middle)).sum() >= MIN_HAT * area),
            "eyes": bool((bright & inside_rows).sum() >= MIN_EYES * area),
            "legs": bool((dark & (row > middle)).sum() >= MIN_LEGS * area)}


def detect(images) -> list[dict | None]:
    """``detect_one`` on every image of a batch."""
    return [detect_one(image) for image in as_images(images)]


def present(found: dict | None, concept: str) -> bool | None:
    """Whether a concept word (a shape, colour, texture or part) is in one picture's detections; None if unclean."""
    if found is None:
        return None
    if concept in PARTS:
        return found[concept]
    key = "shape" if concept in SHAPES else "colour" if concept in COLOURS else "texture"
    if concept not in (*SHAPES, *COLOURS, *TEXTURES):
        raise ValueError(f"unknown concept {concept!r}: one of {SHAPES + tuple(COLOURS) + TEXTURES + PARTS}")
    return found[key] == concept


def rate(images, concept: str) -> float:
    """The share of the clean pictures among ``images`` in which ``concept`` is detected (nan if none is clean)."""
    votes = [present(found, concept) for found in detect(images)]
    clean = [vote for vote in votes if vote is not None]
    return float(np.mean(clean)) if clean else float("nan")
