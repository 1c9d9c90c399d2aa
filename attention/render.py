"""Pictures of the analysis, drawn with torch alone: r_t curves and word × step heatmaps, as IMAGE tensors."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

# Okabe–Ito: colours that stay distinct for colour-blind readers
PALETTE = torch.tensor([[0.00, 0.45, 0.70], [0.90, 0.62, 0.00], [0.00, 0.62, 0.45], [0.80, 0.40, 0.00],
                        [0.34, 0.71, 0.91], [0.80, 0.47, 0.65], [0.94, 0.89, 0.26], [0.0, 0.0, 0.0]])
# a perceptually ordered dark-blue → yellow ramp (viridis anchors)
RAMP = torch.tensor([[0.27, 0.00, 0.33], [0.23, 0.32, 0.55], [0.13, 0.57, 0.55], [0.37, 0.79, 0.38],
                     [0.99, 0.91, 0.14]])


def colormap(x: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] (any shape) → RGB (..., 3) along the viridis ramp."""
    pos = x.clamp(0, 1) * (len(RAMP) - 1)
    lo = pos.floor().long().clamp(max=len(RAMP) - 2)
    frac = (pos - lo).unsqueeze(-1)
    return RAMP[lo] * (1 - frac) + RAMP[lo + 1] * frac


def line_plot(curves: Sequence[Sequence[float]], marker: int | None = None, height: int = 256,
              width: int = 512, margin: int = 16, colours: Sequence[int] | None = None) -> torch.Tensor:
    """Curves over steps (x) on a white canvas (H, W, 3), y from 0 to the highest value; ``marker`` draws a grey
    dashed vertical line at that step; ``colours`` picks each curve's palette entry (default: one each)."""
    canvas = torch.ones(height, width, 3)
    steps = max(len(c) for c in curves)
    top = max((v for c in curves for v in c if v == v), default=1.0) or 1.0
    x_of = lambda t: margin + (width - 2 * margin) * t / max(steps - 1, 1)  # noqa: E731
    y_of = lambda v: height - margin - (height - 2 * margin) * v / top  # noqa: E731
    canvas[height - margin, margin:width - margin] = 0.0  # the x axis
    canvas[margin:height - margin, margin] = 0.0  # the y axis
    if marker is not None:
        x = round(x_of(marker))
        canvas[margin:height - margin:6, x] = 0.6
    for k, curve in enumerate(curves):
        points = [(x_of(t), y_of(v)) for t, v in enumerate(curve) if v == v]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
            xs = torch.linspace(x0, x1, n).round().long()
            ys = torch.linspace(y0, y1, n).round().long()
            for dy in (0, 1):
                colour = k if colours is None else colours[k]
                canvas[(ys + dy).clamp(0, height - 1), xs.clamp(0, width - 1)] = PALETTE[colour % len(PALETTE)]
    return canvas


def heatmap_grid(maps: torch.Tensor, cell: int = 64, gap: int = 2) -> torch.Tensor:
    """maps (words, steps, h, w) → one image (H, W, 3): a row per word, a column per step, each row scaled to
    its own maximum."""
    words, steps = maps.shape[:2]
    cells = F.interpolate(maps.float().flatten(0, 1)[:, None], size=(cell, cell), mode="bilinear")[:, 0]
    cells = cells.reshape(words, steps, cell, cell)
    cells = cells / cells.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None, None]
    grid = torch.ones(words * (cell + gap), steps * (cell + gap), 3)
    for i in range(words):
        for t in range(steps):
            y, x = i * (cell + gap), t * (cell + gap)
            grid[y:y + cell, x:x + cell] = colormap(cells[i, t])
    return grid


def overlay(image: torch.Tensor, attention_map: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """An attention map (h, w), scaled to its maximum and coloured, blended over an image (H, W, 3)."""
    scaled = F.interpolate(attention_map.float()[None, None], size=image.shape[:2], mode="bilinear")[0, 0]
    heat = colormap(scaled / scaled.max().clamp_min(1e-12))
    return (1 - alpha) * image.float() + alpha * heat
