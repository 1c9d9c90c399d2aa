"""The pictures of one report, as AttentionRt outputs them: labelled, and bounded in size (see render.grid_figure)."""

from __future__ import annotations

import torch

from .analysis import Report
from .render import Series, effect_grid, heatmap_grid, overlay, rt_plot


def rt_series(report: Report) -> list[Series]:
    """Each negative word's mean r_t, labelled 'dot → circle' in palette colour i; with a batch, each image's own
    curve faint around it."""
    series = []
    for i, curve in enumerate(report.curves):
        if len(curve.per_image) > 1:
            series += [Series("", r, i, width=1.0, alpha=0.35) for r in curve.per_image]
        series.append(Series(f"{curve.word} → {curve.related}", curve.r, i))
    return series


def rt_picture(report: Report) -> torch.Tensor:
    images = len(report.curves[0].per_image)
    batch = f", mean of {images} images" if images > 1 else ""
    return rt_plot(rt_series(report), report.gate_step, f"r_t per step ({report.score}{batch})")


def heatmaps_picture(report: Report, words: dict[str, list[str]]) -> torch.Tensor:
    """Every captured word (rows, positive first) at every step (columns), batch mean."""
    rows = torch.cat([report.maps["positive"].mean(1), report.maps["negative"].mean(1)], dim=1).transpose(0, 1)
    labels = [f"{branch}: {word}" for branch in ("positive", "negative") for word in words[branch]]
    return heatmap_grid(rows, labels, [str(t) for t in report.steps], "word maps per step (batch mean)")


def effects_picture(report: Report) -> torch.Tensor | None:
    """|w⁻·(n − u)| per negative term (rows) and step, or None when the run had no negative guidance."""
    if not report.effects:
        return None
    return effect_grid(torch.stack(list(report.effects.values())), list(report.effects),
                       [str(t) for t in report.steps])


def overlay_pictures(report: Report, images: torch.Tensor) -> torch.Tensor:
    """Each negative word's time-aggregated map over each image (image-major), named and in its colour."""
    aggregate = report.maps["negative"].sum(0)  # (B, words, h, w)
    return torch.stack([
        overlay(images[b], aggregate[min(b, len(aggregate) - 1), i], f"{curve.word}" + (
            f" (image {b})" if len(images) > 1 else ""), colour_index=i)
        for b in range(len(images)) for i, curve in enumerate(report.curves)])
