"""Pictures of the analysis as IMAGE tensors (H, W, 3) in [0, 1]: the r_t plot, word × step grids, overlays.

Drawn with Pillow like a small matplotlib figure (white background, grey grid, 11–13 px text). Text goes through
labels.py, so words in any script read, and a character that no font has shows as its code point ("U+732B").
Each picture also comes as a ``Figure`` (``*_figure``): the RGBA image and the box of every label it drew.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .labels import fit, text_image

# One palette for word colours, here and in web/js/negative_guidance.js (a unit test compares them): Okabe–Ito
# without its yellow and black, so that each colour reads on the PNGs' white and on the node's dark background.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#56b4e9", "#cc79a7")
# a perceptually ordered dark-blue → yellow ramp (viridis anchors)
RAMP = torch.tensor([[0.27, 0.00, 0.33], [0.23, 0.32, 0.55], [0.13, 0.57, 0.55], [0.37, 0.79, 0.38],
                     [0.99, 0.91, 0.14]])
TEXT, MUTED, GRID, FRAME = "#222222", "#555555", "#e5e5e5", "#444444"
PAD, TICK, SUPERSAMPLE = 10, 4, 4
MAX_COLUMNS, MAX_WIDTH, MIN_CELL, MAX_CELL, MAX_LABEL = 50, 1400, 12, 64, 200

Box = tuple[int, int, int, int]


def colour(index: int | str) -> str:
    """A palette entry by index (wrapping), or a "#rrggbb" string as it is."""
    return PALETTE[index % len(PALETTE)] if isinstance(index, int) else index


def colormap(x: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] (any shape) → RGB (..., 3) along the viridis ramp."""
    pos = x.clamp(0, 1) * (len(RAMP) - 1)
    lo = pos.floor().long().clamp(max=len(RAMP) - 2)
    frac = (pos - lo).unsqueeze(-1)
    return RAMP[lo] * (1 - frac) + RAMP[lo + 1] * frac


def colour_bytes(x: torch.Tensor) -> torch.Tensor:
    """colormap as 8-bit RGB (..., 3), through a 256-entry table: fast for whole grids."""
    return LUT[(x.clamp(0, 1) * 255).round().long()]


LUT = (colormap(torch.linspace(0, 1, 256)) * 255).round().byte()  # (256, 3)


@dataclass
class Figure:
    """An RGBA picture and the box (x0, y0, x1, y1) of each label drawn on it, by name."""

    image: Image.Image
    boxes: dict[str, Box] = field(default_factory=dict)

    def text(self, name: str, text: str, xy: tuple[float, float], size: int = 12, anchor: str = "lt",
             fill: str = TEXT, rotate: bool = False) -> Box:
        """Draws one line of text; ``anchor`` is horizontal (l, m, r) then vertical (t, m, b), as in Pillow."""
        label = text_image(text, size, fill)
        label = label.rotate(90, expand=True) if rotate else label
        x = round(xy[0] - {"l": 0, "m": label.width / 2, "r": label.width}[anchor[0]])
        y = round(xy[1] - {"t": 0, "m": label.height / 2, "b": label.height}[anchor[1]])
        x, y = max(0, min(x, self.image.width - label.width)), max(0, min(y, self.image.height - label.height))
        self.image.alpha_composite(label, (x, y))
        self.boxes[name] = (x, y, x + label.width, y + label.height)
        return self.boxes[name]

    def tensor(self) -> torch.Tensor:
        """The picture as an IMAGE tensor (H, W, 3) in [0, 1]."""
        return torch.from_numpy(np.asarray(self.image.convert("RGB"), dtype=np.float32) / 255)


@dataclass(frozen=True)
class Series:
    """One line of the r_t plot.

    label: its legend text ("" = not in the legend, e.g. the per-image curves around a labelled mean);
    values: one value per step, NaN where there is none (drawn as a gap); colour: a PALETTE index or "#rrggbb";
    width: stroke in px; dashed: a dashed stroke; alpha: opacity in (0, 1].
    """

    label: str
    values: Sequence[float]
    colour: int | str = 0
    width: float = 2.0
    dashed: bool = False
    alpha: float = 1.0


def word_series(curves: Mapping[str, Mapping]) -> list[Series]:
    """AttentionRt's curves ({negative word: {"related": r(i), "r": r_t per step}}) as series labelled
    "dot → circle", the i-th word in palette colour i (as in the node's JS plot)."""
    return [Series(f"{word} → {curve['related']}", curve["r"], i) for i, (word, curve) in enumerate(curves.items())]


def ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10^k apart) from at or below ``low`` to at or above ``high``."""
    raw = max(high - low, 1e-12) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    step = max(1, round(step)) if integer else step
    start = math.floor(low / step + 1e-9) * step
    return [round(start + k * step, 12) for k in range(math.ceil((high - start) / step - 1e-9) + 1)]


def dashes(points: list[tuple[float, float]], on: float, off: float) -> list[list[tuple[float, float]]]:
    """The drawn pieces of a polyline under a dash pattern of ``on`` and ``off`` lengths."""
    pieces, current, pen, left = [], [points[0]], True, on
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        length, pos = math.hypot(xb - xa, yb - ya), 0.0
        while length - pos > left:
            pos += left
            point = (xa + (xb - xa) * pos / length, ya + (yb - ya) * pos / length)
            if pen:
                pieces.append([*current, point])
            current, pen = [point], not pen
            left = on if pen else off
        left -= length - pos
        current.append((xb, yb))
    return pieces + [current] * (pen and len(current) > 1)


def draw_series(fig: Figure, series: Sequence[Series], area: Box, x_of, y_of) -> None:
    """Anti-aliased lines of each series over the plot ``area``, drawn at SUPERSAMPLE× and averaged down."""
    margin, s = 4, SUPERSAMPLE
    box = (area[0] - margin, area[1] - margin, area[2] + margin, area[3] + margin)
    big = fig.image.crop(box).convert("RGB")
    big = big.resize((big.width * s, big.height * s), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(big, "RGBA")
    to_big = lambda t, v: ((x_of(t) - box[0]) * s, (y_of(v) - box[1]) * s)  # noqa: E731
    for line in series:
        rgb = tuple(int(colour(line.colour)[k:k + 2], 16) for k in (1, 3, 5))
        fill, width = (*rgb, round(255 * line.alpha)), max(1, round(line.width * s))
        finite = [(t, v) for t, v in enumerate(line.values) if math.isfinite(v)]
        for _, run in itertools.groupby(enumerate(finite), key=lambda item: item[1][0] - item[0]):
            points = [to_big(t, v) for _, (t, v) in run]
            if len(points) == 1:
                (x, y), r = points[0], width
                draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
                continue
            for piece in dashes(points, 5 * width, 3 * width) if line.dashed else [points]:
                draw.line(piece, fill=fill, width=width, joint="curve")
    fig.image.paste(big.reduce(s), box[:2])


def rt_figure(series: Sequence[Series], gate_step: int | None = None, title: str = "r_t per step",
              width: int = 640, height: int = 360, x_label: str = "step", y_label: str = "r_t") -> Figure:
    """The r_t plot: one line per series over steps (x from 0 to the longest series' last step, y from 0 or the
    lowest value to above the highest), grid, ticks, axis labels, a title, a legend of the labelled series (right
    of the axes; "+ k more" past what fits) and a dashed line "suggested gate: step N" at ``gate_step``.

    Boxes: "axes", "title", "x_label", "y_label", "x_tick:<k>", "y_tick:<k>", "legend:<i>" per legend entry,
    "legend:more", "gate"."""
    fig = Figure(Image.new("RGBA", (width, height), "white"))
    draw = ImageDraw.Draw(fig.image)
    steps = max((len(line.values) for line in series), default=1)
    finite = [v for line in series for v in line.values if math.isfinite(v)]
    y_ticks = ticks(min([0.0, *finite]), max(finite, default=1.0) * 1.05 or 1.0)
    x_ticks = [t for t in ticks(0, max(steps - 1, 1), 8, integer=True) if t <= max(steps - 1, 1)]
    top = fig.text("title", title, (width / 2, PAD), 13, "mt")[3] + 8
    entries = [line for line in series if line.label]
    label_width = min(max((text_image(e.label).width for e in entries), default=0), round(width * 0.35))
    legend_left = width - PAD - (label_width + 46) if entries else width - PAD
    tick_width = max(text_image(f"{v:g}", 11).width for v in y_ticks)
    y_label_box = text_image(y_label).height
    left = PAD + y_label_box + 6 + tick_width + 3 + TICK
    bottom = height - PAD - text_image(x_label).height - 4 - text_image("0", 11).height - 2 - TICK
    right = legend_left - 14 if entries else width - PAD - text_image(f"{x_ticks[-1]:g}", 11).width // 2
    area = fig.boxes["axes"] = (left, top, right, bottom)
    x_of = lambda t: left + (right - left) * t / max(steps - 1, 1)  # noqa: E731
    y_of = lambda v: bottom - (bottom - top) * (v - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])  # noqa: E731
    for k, v in enumerate(y_ticks):
        y = round(y_of(v))
        draw.line((left, y, right, y), fill=GRID)
        draw.line((left - TICK, y, left, y), fill=FRAME)
        fig.text(f"y_tick:{k}", f"{v:g}", (left - TICK - 3, y), 11, "rm", MUTED)
    for k, t in enumerate(x_ticks):
        x = round(x_of(t))
        draw.line((x, top, x, bottom), fill=GRID)
        draw.line((x, bottom, x, bottom + TICK), fill=FRAME)
        fig.text(f"x_tick:{k}", f"{t:g}", (x, bottom + TICK + 2), 11, "mt", MUTED)
    draw_series(fig, series, area, x_of, y_of)
    draw.rectangle(area, outline=FRAME)
    fig.text("x_label", x_label, ((left + right) / 2, height - PAD), 12, "mb")
    fig.text("y_label", y_label, (PAD, (top + bottom) / 2), 12, "lm", rotate=True)
    if gate_step is not None:
        gate_line(fig, round(x_of(gate_step)), area, f"suggested gate: step {gate_step}")
    if entries:
        legend(fig, entries, (legend_left, top), bottom - top, label_width)
    return fig


def gate_line(fig: Figure, x: int, area: Box, text: str) -> None:
    """A grey dashed vertical line at ``x`` with its label at the top of the axes, on a white box."""
    draw = ImageDraw.Draw(fig.image, "RGBA")
    for y in range(area[1] + 1, area[3], 7):
        draw.line((x, y, x, min(y + 3, area[3] - 1)), fill=MUTED, width=1)
    label = text_image(text, 11)
    side = "l" if x + 6 + label.width < area[2] - 2 else "r"
    lx = x + 6 if side == "l" else x - 6
    x0 = lx - 3 if side == "l" else lx - label.width - 3
    draw.rectangle((x0, area[1] + 4, x0 + label.width + 6, area[1] + 6 + label.height), fill=(255, 255, 255, 220))
    fig.text("gate", text, (lx, area[1] + 5), 11, side + "t", MUTED)


def legend(fig: Figure, entries: Sequence[Series], xy: tuple[int, int], max_height: int, label_width: int) -> None:
    """A framed legend at ``xy``: a stroke sample and the label of each entry, "+ k more" past ``max_height``."""
    row = 18
    fits = max(1, (max_height - 10) // row)
    shown = entries if len(entries) <= fits else entries[:fits - 1]
    lines = len(shown) + (len(shown) < len(entries))
    x, y = xy
    draw = ImageDraw.Draw(fig.image)
    draw.rectangle((x, y, x + label_width + 46, y + 8 + lines * row), fill="white", outline="#cccccc")
    for i, entry in enumerate(shown):
        middle = y + 4 + i * row + row // 2
        sample = Series("", [0.0, 1.0], entry.colour, min(entry.width, 3.0), entry.dashed, entry.alpha)
        draw_series(fig, [sample], (x + 8, middle, x + 30, middle), lambda t: x + 8 + 22 * t,
                    lambda v, y=middle: y)
        fig.text(f"legend:{i}", fit(entry.label, label_width), (x + 36, middle), 12, "lm")
    if len(shown) < len(entries):
        fig.text("legend:more", f"+ {len(entries) - len(shown)} more", (x + 36, y + 4 + len(shown) * row + row // 2),
                 12, "lm", MUTED)


def rt_plot(series: Sequence[Series], gate_step: int | None = None, title: str = "r_t per step",
            width: int = 640, height: int = 360) -> torch.Tensor:
    """rt_figure as an IMAGE tensor (H, W, 3) in [0, 1]."""
    return rt_figure(series, gate_step, title, width, height).tensor()


def shown_steps(steps: int) -> list[int]:
    """Every step, or MAX_COLUMNS evenly spaced ones (first and last included) when there are more."""
    if steps <= MAX_COLUMNS:
        return list(range(steps))
    return sorted({round(k * (steps - 1) / (MAX_COLUMNS - 1)) for k in range(MAX_COLUMNS)})


def grid_figure(maps: torch.Tensor, row_labels: Sequence[str] | None = None,
                step_labels: Sequence[str] | None = None, title: str = "", cell: int = 48,
                per_row: bool = True) -> Figure:
    """maps (rows, steps, h, w) as a grid: a row per label, a column per shown step, each cell coloured along
    viridis. per_row: each row scaled to its own maximum (colour bar "0" to "row max"); otherwise one scale from
    the lowest to the highest value (colour bar labelled with both).

    Bounded: at most MAX_COLUMNS (50) columns (past it, evenly spaced steps, and the caption says how many of how
    many), at most MAX_WIDTH (1400) px wide, cells MIN_CELL to MAX_CELL (12–64) px, row labels at most MAX_LABEL
    (200) px: at most 1400 × (70 + rows × 66) pixels, whatever the number of steps.

    Boxes: "grid", "title", "caption", "row:<i>", "column:<j>" (labelled columns), "bar", "bar:max", "bar:min"."""
    rows, steps = maps.shape[:2]
    row_labels = [f"row {i}" for i in range(rows)] if row_labels is None else list(row_labels)
    step_labels = [str(t) for t in range(steps)] if step_labels is None else list(step_labels)
    if len(row_labels) != rows or len(step_labels) != steps:
        raise ValueError(f"maps of {rows} rows × {steps} steps need as many labels; got {len(row_labels)} row "
                         f"labels and {len(step_labels)} step labels")
    shown = shown_steps(steps)
    values = maps[:, shown].float()
    if per_row:  # (rows, 1, 1, 1): each row's own maximum
        low, span = 0.0, maps.flatten(1).amax(1).float().clamp_min(1e-12)[:, None, None, None]
        bar_text = ("row max", "0")
    else:
        low, high = float(maps.min()), float(maps.max())
        span, bar_text = (high - low) or 1.0, (f"{high:.3g}", f"{low:.3g}")
    label_width = min(max(text_image(label).width for label in row_labels), MAX_LABEL)
    bar_width = 12 + 6 + max(text_image(t, 11).width for t in bar_text) + PAD
    left = PAD + label_width + 8
    cell = max(MIN_CELL, min(cell, MAX_CELL, (MAX_WIDTH - left - 12 - bar_width) // len(shown) - 2))
    pitch = cell + 2
    caption = "step" if len(shown) == steps else f"step: {len(shown)} of {steps} shown, evenly spaced"
    title_height = text_image(title, 13).height + 4 if title else 0
    column_top = PAD + title_height + text_image(caption).height + 4
    top = column_top + text_image("0", 11).height + 4
    grid_width, grid_height = len(shown) * pitch - 2, rows * pitch - 2
    bar_height = max(min(grid_height, 200), 60)
    width = max(left + grid_width + 12 + bar_width, left + text_image(caption).width + PAD)
    fig = Figure(Image.new("RGBA", (width, top + max(grid_height, bar_height) + PAD), "white"))
    if title:
        fig.text("title", title, (PAD, PAD), 13)
    fig.text("caption", caption, (left, PAD + title_height), 12, "lt", MUTED)
    cells = F.interpolate(values.flatten(0, 1)[:, None], size=(cell, cell), mode="bilinear")[:, 0]
    cells = colour_bytes((cells.reshape(rows, len(shown), cell, cell) - low) / span)  # (rows, columns, cell, cell, 3)
    sheet = torch.full((rows, pitch, len(shown), pitch, 3), 255, dtype=torch.uint8)
    sheet[:, :cell, :, :cell] = cells.permute(0, 2, 1, 3, 4)
    sheet = sheet.reshape(rows * pitch, len(shown) * pitch, 3)[:grid_height, :grid_width]
    fig.image.paste(Image.fromarray(sheet.numpy(), "RGB"), (left, top))
    fig.boxes["grid"] = (left, top, left + grid_width, top + grid_height)
    for i, label in enumerate(row_labels):
        fig.text(f"row:{i}", fit(label, MAX_LABEL), (left - 8, top + i * pitch + cell / 2), 12, "rm")
    every = math.ceil((max(text_image(step_labels[t], 11).width for t in shown) + 6) / pitch)
    for j in range(0, len(shown), every):
        fig.text(f"column:{j}", step_labels[shown[j]], (left + j * pitch + cell / 2, column_top), 11, "mt", MUTED)
    colour_bar(fig, (left + grid_width + 12, top), bar_height, bar_text)
    return fig


def colour_bar(fig: Figure, xy: tuple[int, int], height: int, text: tuple[str, str]) -> None:
    """A vertical viridis bar, top = high, with its top and bottom values written beside it."""
    x, y = xy
    ramp = colormap(torch.linspace(1, 0, height))[:, None].expand(height, 12, 3)
    fig.image.paste(Image.fromarray((ramp * 255).round().byte().numpy(), "RGB"), (x, y))
    ImageDraw.Draw(fig.image).rectangle((x, y, x + 11, y + height - 1), outline=FRAME)
    fig.boxes["bar"] = (x, y, x + 12, y + height)
    fig.text("bar:max", text[0], (x + 18, y), 11, "lt", MUTED)
    fig.text("bar:min", text[1], (x + 18, y + height), 11, "lb", MUTED)


def heatmap_grid(maps: torch.Tensor, row_labels: Sequence[str] | None = None,
                 step_labels: Sequence[str] | None = None, title: str = "attention per step") -> torch.Tensor:
    """Word maps (words, steps, h, w) as a grid, each row scaled to its own maximum; row labels such as
    "positive: circle", step labels on top of the columns (default: the step numbers). See grid_figure."""
    return grid_figure(maps, row_labels, step_labels, title).tensor()


def effect_grid(maps: torch.Tensor, row_labels: Sequence[str] | None = None,
                step_labels: Sequence[str] | None = None, title: str = "effect |w⁻·(n − u)| per step") -> torch.Tensor:
    """Effect maps (terms, steps, h, w) as a grid on one colour scale, with a colour bar labelled with its min and
    max. See grid_figure."""
    return grid_figure(maps, row_labels, step_labels, title, per_row=False).tensor()


def overlay_figure(image: torch.Tensor, attention_map: torch.Tensor, label: str = "", alpha: float = 0.5,
                   colour_index: int | str | None = None) -> Figure:
    """An attention map (h, w), scaled to its maximum and coloured, blended over an image (H, W, 3); ``label``
    written at the top left in white on a dark box (legible on any image), after a swatch of ``colour_index``.

    Boxes: "label"."""
    scaled = F.interpolate(attention_map.float()[None, None], size=image.shape[:2], mode="bilinear")[0, 0]
    heat = colormap(scaled / scaled.max().clamp_min(1e-12))
    blended = ((1 - alpha) * image.float() + alpha * heat).clamp(0, 1)
    fig = Figure(Image.fromarray((blended * 255).round().byte().numpy(), "RGB").convert("RGBA"))
    if label:
        size = max(12, min(24, image.shape[0] // 32))
        swatch = size if colour_index is not None else 0
        text = fit(label, max(image.shape[1] - 16 - swatch, 8), size)
        ink = text_image(text, size, "white")
        box = (4, 4, 4 + 8 + swatch + ink.width, 4 + 6 + ink.height)
        draw = ImageDraw.Draw(fig.image, "RGBA")
        draw.rounded_rectangle(box, radius=3, fill=(0, 0, 0, 170))
        if colour_index is not None:
            middle = (box[1] + box[3]) // 2
            draw.rectangle((9, middle - size // 3, 9 + size * 2 // 3, middle + size // 3), fill=colour(colour_index),
                           outline="#dddddd")
        fig.text("label", text, (8 + swatch, 7), size, "lt", "white")
    return fig


def overlay(image: torch.Tensor, attention_map: torch.Tensor, label: str = "", alpha: float = 0.5,
            colour_index: int | str | None = None) -> torch.Tensor:
    """overlay_figure as an IMAGE tensor (H, W, 3) in [0, 1]."""
    return overlay_figure(image, attention_map, label, alpha, colour_index).tensor()
