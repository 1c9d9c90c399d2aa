"""A deterministic synthetic world for the toy concept model: one creature-like object on a smooth background.

Each 32×32 image shows one **body** (a circle, square or triangle) with two global, adjective-like attributes, a
**colour** (red, green, blue) and a **texture** (plain, or striped with darker horizontal bands), and three
noun-like **parts** with a place of their own: a black **hat** on top, white **eyes** on the upper body and black
**legs** below it. Every attribute is drawn independently, and the body's place leaves room for a hat and legs
whether or not they are drawn, so the layout does not give the parts away.

Captions are plain English ("a striped red circle with a hat and eyes") or tags ("red, hat, striped"); 10% are empty
for classifier-free guidance. Each attribute is named with some probability, so an unnamed one follows the data's
prior: the setting of Ban et al. 2024 (arXiv 2406.02965), where "glasses" is likely but unasked for in "professional
office woman". Colour, shape and texture are named whatever their value ("plain" names the absence of stripes), so
leaving them unnamed tells the model nothing. A part is named only when it is there, so leaving it unnamed lowers its
odds from q / (1 − q) to q·(1 − m) / (1 − q), q = PART_RATE, m = the chance a caption names a present part
(0.9·MENTION["part"], empty captions included); at q = 0.7, m = 0.36 an unnamed part is still in 60% of the
matching training pictures; classifier-free guidance at scale s, if it tilted the odds exactly to
odds_c^s·odds_u^(1−s), would leave it in 38% at s = 3 (bench/bench_toy_quality.py measures what the model does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
SUPERSAMPLE = 4
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (0.86, 0.14, 0.12), "green": (0.13, 0.72, 0.22), "blue": (0.14, 0.30, 0.90)}
TEXTURES = ("plain", "striped")
PARTS = ("hat", "eyes", "legs")
STRIPE_RATE = 0.4          # share of striped bodies
PART_RATE = 0.7            # share of pictures with a given part, each part independently
MENTION = {"shape": 0.7, "colour": 0.6, "texture": 0.5, "part": 0.4}
TAGS = 0.25                # share of non-empty captions written as tags
EMPTY = 0.1                # share of empty captions (classifier-free guidance)
STRIPE_PERIOD = 4.0        # pixels: a dark band of half the period, then a band of the body colour
STRIPE_SHADE = 0.55        # a dark band's colour is this share of the body colour
BLACK = (0.05, 0.05, 0.05)  # hat and legs
WHITE = (0.97, 0.97, 0.97)  # eyes
EYE_RADIUS = 1.3
HAT_HEIGHT, LEG_LENGTH = 5.0, 3.5  # pixels above the body's top (brim 1.5, crown 3.5) and below its bottom
MARGIN = 1.5               # pixels between the image edge and the nearest possible hat or leg pixel
SIZE_RANGE = (5.0, 7.0)    # the body's size (a circle's radius) in pixels


@dataclass(frozen=True)
class Scene:
    """What one image shows; ``x``, ``y`` (the body's centre) and ``size`` are in pixels of the SIZE×SIZE image."""

    shape: str
    colour: str
    texture: str
    hat: bool
    eyes: bool
    legs: bool
    x: float
    y: float
    size: float
    background: tuple[float, float, float]
    gradient: float


def extent(shape: str, size: float) -> tuple[float, float, float]:
    """(half width, height above the centre, height below it) of a body of this shape and size."""
    if shape == "circle":
        return size, size, size
    if shape == "square":
        return 0.85 * size, 0.85 * size, 0.85 * size
    return 1.2 * size * np.sqrt(3) / 2, 1.2 * size, 0.6 * size


def random_scene(rng: np.random.Generator) -> Scene:
    """A scene drawn uniformly over shapes and colours, striped with probability STRIPE_RATE and each part with
    probability PART_RATE; the body's place leaves MARGIN around the largest hat and legs it could have."""
    shape = str(rng.choice(SHAPES))
    size = float(rng.uniform(*SIZE_RANGE))
    half_width, above, below = extent(shape, size)
    x = rng.uniform(MARGIN + half_width + 1, SIZE - MARGIN - half_width - 1)
    y = rng.uniform(MARGIN + HAT_HEIGHT + above, SIZE - MARGIN - LEG_LENGTH - below)
    grey = rng.uniform(0.40, 0.62)
    tint = rng.uniform(-0.03, 0.03, size=3)
    return Scene(shape=shape, colour=str(rng.choice(list(COLOURS))),
                 texture="striped" if rng.random() < STRIPE_RATE else "plain",
                 hat=bool(rng.random() < PART_RATE), eyes=bool(rng.random() < PART_RATE),
                 legs=bool(rng.random() < PART_RATE), x=float(x), y=float(y), size=size,
                 background=tuple(float(v) for v in grey + tint), gradient=float(rng.uniform(-0.05, 0.05)))


def shape_mask(shape: str, x: float, y: float, size: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of a body centred at (x, y): a disc of radius size, a square of half-side 0.85·size,
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


def box(u: np.ndarray, v: np.ndarray, left: float, right: float, top: float, bottom: float) -> np.ndarray:
    return (u >= left) & (u <= right) & (v >= top) & (v <= bottom)


def render(scene: Scene) -> np.ndarray:
    """The scene as a float32 [SIZE, SIZE, 3] image in [0, 1], antialiased by SUPERSAMPLE² supersampling.

    Legs are drawn first and the body over them, so they come out from under it; the hat's brim overlaps the
    body's top by 1.5 px (the triangle's apex: by 2.5 px), so the object stays one connected region."""
    n = SIZE * SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / SUPERSAMPLE
    u, v = np.meshgrid(coords, coords)
    s, x, y = scene.size, scene.x, scene.y
    half_width, above, below = extent(scene.shape, s)
    image = np.empty((n, n, 3), np.float32)
    image[:] = np.asarray(scene.background, np.float32)
    image += (scene.gradient * (v / SIZE - 0.5))[..., None]
    if scene.legs:
        for side in (-1, 1):
            leg = x + side * 0.4 * s
            image[box(u, v, leg - 0.9, leg + 0.9, y, y + below + LEG_LENGTH)] = BLACK
    body = shape_mask(scene.shape, x, y, s, u, v)
    colour = np.asarray(COLOURS[scene.colour], np.float32)
    image[body] = colour
    if scene.texture == "striped":
        dark = np.floor((v - y) / (STRIPE_PERIOD / 2)) % 2 == 1
        image[body & dark] = STRIPE_SHADE * colour
    if scene.eyes:
        level, spread = (y + 0.2 * s, 0.4 * s) if scene.shape == "triangle" else (y - 0.2 * s, 0.42 * s)
        for side in (-1, 1):
            image[(u - x - side * spread) ** 2 + (v - level) ** 2 <= EYE_RADIUS**2] = WHITE
    if scene.hat:
        brim = y - above + (1.0 if scene.shape == "triangle" else 0.5)
        image[box(u, v, x - 0.75 * s - 1, x + 0.75 * s + 1, brim - 1.5, brim)] = BLACK
        image[box(u, v, x - 0.45 * s, x + 0.45 * s, brim - HAT_HEIGHT, brim)] = BLACK
    pooled = image.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(pooled, 0.0, 1.0)


def mentioned_words(scene: Scene, rng: np.random.Generator) -> dict[str, str]:
    """{attribute: word} for the attributes one caption names: shape, colour and texture whatever their value
    (MENTION[attribute]), each present part with probability MENTION["part"]."""
    words = {key: getattr(scene, key) for key in ("shape", "colour", "texture") if rng.random() < MENTION[key]}
    return words | {part: part for part in PARTS if getattr(scene, part) and rng.random() < MENTION["part"]}


def sentence(words: dict[str, str], rng: np.random.Generator) -> str:
    """Plain English: "a striped red circle with a hat and eyes", "a shape with legs", "a plain square"."""
    noun = [words.get("texture"), words.get("colour"), words.get("shape", "shape")]
    parts = [("a hat" if part == "hat" else part) for part in rng.permutation(list(PARTS)) if part in words]
    text = " ".join(["a", *(word for word in noun if word)])
    if parts:
        text += " with " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])
    return text


def tags(words: dict[str, str], rng: np.random.Generator) -> str:
    """Tag style, in random order, the way single-word negatives are written: "red, hat", "striped", "eyes"."""
    return ", ".join(rng.permutation(list(words.values())))


def random_caption(scene: Scene, rng: np.random.Generator) -> str:
    """Empty with probability EMPTY; else the scene's mentioned words as tags (TAGS) or as a sentence. A caption
    that would name nothing is a sentence ("a shape")."""
    if rng.random() < EMPTY:
        return ""
    words = mentioned_words(scene, rng)
    return tags(words, rng) if words and rng.random() < TAGS else sentence(words, rng)


def named(text: str) -> dict[str, str | bool]:
    """What a prompt asks for, {attribute: value}: "a striped red circle with a hat" → {"shape": "circle",
    "colour": "red", "texture": "striped", "hat": True}; words outside the world's vocabulary are ignored."""
    words = set(text.replace(",", " ").split())
    asked: dict[str, str | bool] = {part: True for part in PARTS if part in words}
    for key, values in (("shape", SHAPES), ("colour", COLOURS), ("texture", TEXTURES)):
        for value in values:
            if value in words:
                asked[key] = value
    return asked


def scenes(seed: int, n: int) -> list[Scene]:
    """``n`` random scenes from one seed: same seed, same scenes."""
    rng = np.random.default_rng(seed)
    return [random_scene(rng) for _ in range(n)]


def images(scene_list: list[Scene]) -> np.ndarray:
    """The rendered scenes as [n, SIZE, SIZE, 3]."""
    return np.stack([render(scene) for scene in scene_list])
