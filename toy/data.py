"""A deterministic synthetic dataset for the toy concept model: one coloured shape on a muted background.

Each image has a shape (circle, square, triangle), a colour (red, green, blue, yellow), and two independent
noun-like accessories: a white dot at the shape's centre and a black frame around the image. Captions mention
each attribute with probability ``MENTION``, so an unmentioned attribute is sampled from the data's prior: the
setting of Ban et al. 2024, where "glasses" is likely but unasked for in "professional office woman".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
SUPERSAMPLE = 4
FRAME_WIDTH = 2
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (0.86, 0.14, 0.12), "green": (0.13, 0.72, 0.22), "blue": (0.14, 0.30, 0.90),
           "yellow": (0.95, 0.84, 0.10)}
ACCESSORIES = ("dot", "frame")
ACCESSORY_RATE = 0.5
MENTION = 0.7
TAGS = 0.2
DOT_RADIUS = 2.2
FRAME_RGB = (0.04, 0.04, 0.04)
DOT_RGB = (0.98, 0.98, 0.98)


@dataclass(frozen=True)
class Scene:
    """What one image shows; ``x``, ``y`` and ``size`` are in pixels of the SIZE×SIZE image."""

    shape: str
    colour: str
    dot: bool
    frame: bool
    x: float
    y: float
    size: float
    background: tuple[float, float, float]
    gradient: float


def random_scene(rng: np.random.Generator) -> Scene:
    """A scene drawn uniformly over shapes and colours, each accessory with probability ACCESSORY_RATE; the shape
    stays clear of the frame."""
    size = rng.uniform(5.5, 9.0)
    margin = FRAME_WIDTH + 2 + 1.2 * size
    x, y = rng.uniform(margin, SIZE - margin, size=2)
    grey = rng.uniform(0.30, 0.62)
    tint = rng.uniform(-0.05, 0.05, size=3)
    return Scene(shape=str(rng.choice(SHAPES)), colour=str(rng.choice(list(COLOURS))),
                 dot=bool(rng.random() < ACCESSORY_RATE), frame=bool(rng.random() < ACCESSORY_RATE),
                 x=float(x), y=float(y), size=float(size), background=tuple(float(v) for v in grey + tint),
                 gradient=float(rng.uniform(-0.06, 0.06)))


def shape_mask(shape: str, x: float, y: float, size: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of a shape centred at (x, y): a disc of radius size, a square of half-side 0.85·size,
    or an upward equilateral triangle with circumradius 1.2·size (centroid at (x, y))."""
    if shape == "circle":
        return (u - x) ** 2 + (v - y) ** 2 <= size**2
    if shape == "square":
        half = 0.85 * size
        return (np.abs(u - x) <= half) & (np.abs(v - y) <= half)
    radius = 1.2 * size
    top, base = y - radius, y + radius / 2
    half_width = (v - top) / (base - top) * radius * np.sqrt(3) / 2
    return (v >= top) & (v <= base) & (np.abs(u - x) <= half_width)


def render(scene: Scene) -> np.ndarray:
    """The scene as a float32 [SIZE, SIZE, 3] image in [0, 1], antialiased by SUPERSAMPLE² supersampling."""
    n = SIZE * SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / SUPERSAMPLE
    u, v = np.meshgrid(coords, coords)
    image = np.empty((n, n, 3), np.float32)
    image[:] = np.asarray(scene.background, np.float32)
    image += (scene.gradient * (v / SIZE - 0.5))[..., None]
    image[shape_mask(scene.shape, scene.x, scene.y, scene.size, u, v)] = COLOURS[scene.colour]
    if scene.dot:
        image[(u - scene.x) ** 2 + (v - scene.y) ** 2 <= DOT_RADIUS**2] = DOT_RGB
    if scene.frame:
        edge = np.minimum(np.minimum(u, n / SUPERSAMPLE - u), np.minimum(v, n / SUPERSAMPLE - v))
        image[edge <= FRAME_WIDTH] = FRAME_RGB
    pooled = image.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(pooled, 0.0, 1.0)


def caption(scene: Scene, mentioned: dict[str, bool]) -> str:
    """Plain English for the mentioned attributes: "a red circle with a dot and a frame", "a shape", "a blue square"."""
    words = ["a"]
    if mentioned["colour"]:
        words.append(scene.colour)
    words.append(scene.shape if mentioned["shape"] else "shape")
    extras = [f"a {name}" for name in ACCESSORIES if getattr(scene, name) and mentioned[name]]
    if extras:
        words += ["with", " and ".join(extras)]
    return " ".join(words)


def tags(scene: Scene, mentioned: dict[str, bool]) -> str:
    """Tag style, the way single-word negatives are written: "red, dot", "frame", "circle"."""
    present = {"colour": scene.colour, "shape": scene.shape} | {n: n for n in ACCESSORIES if getattr(scene, n)}
    return ", ".join(word for key, word in present.items() if mentioned[key]) or scene.shape


def random_caption(scene: Scene, rng: np.random.Generator, drop: float = 0.1) -> str:
    """A caption mentioning each attribute with probability MENTION, as a sentence or (one in TAGS) as tags;
    empty with probability ``drop`` (for classifier-free guidance)."""
    mentioned = {key: bool(rng.random() < MENTION) for key in ("colour", "shape", *ACCESSORIES)}
    if rng.random() < drop:
        return ""
    return tags(scene, mentioned) if rng.random() < TAGS else caption(scene, mentioned)


def scenes(seed: int, n: int) -> list[Scene]:
    """``n`` random scenes from one seed: same seed, same scenes."""
    rng = np.random.default_rng(seed)
    return [random_scene(rng) for _ in range(n)]


def images(scene_list: list[Scene]) -> np.ndarray:
    """The rendered scenes as [n, SIZE, SIZE, 3]."""
    return np.stack([render(scene) for scene in scene_list])
