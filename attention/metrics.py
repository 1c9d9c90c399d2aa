"""r_t, the negative's attention relative to its most related positive token (Ban et al. 2024, sec. 4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

SCORES = ("frobenius", "mean_square")


def map_scores(maps: torch.Tensor) -> torch.Tensor:
    """[‖A‖_F, mean(A²)] of each map (B, words, *grid) over its whole grid, frames included: the seed's formula and
    Ban et al.'s released code. Returns (B, words, 2)."""
    squares = maps.float().square().flatten(2)
    return torch.stack([squares.sum(-1).sqrt(), squares.mean(-1)], dim=-1)


def score_index(score: str) -> int:
    """Where ``score`` sits in the last dim of ``map_scores``."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    return SCORES.index(score)


def r_t(negative: Sequence[float], positive: Sequence[float]) -> float:
    """r_t = Σ_k s(A_k,neg(i)) / Σ_k s(A_k,pos(r(i))), from the layer scores s of one step t."""
    den = sum(positive)
    return sum(negative) / den if den > 0 else float("nan")


def related_token(negative: torch.Tensor, positives: torch.Tensor) -> int:
    """r(i): the positive token whose time-aggregated map correlates best with negative token i's.

    negative: (h, w); positives: (words, h, w). Pearson correlation over pixels; ties go to the first word.
    """
    x = negative.flatten().float()
    ys = positives.flatten(1).float()
    x = x - x.mean()
    ys = ys - ys.mean(dim=1, keepdim=True)
    corr = (ys @ x) / (ys.norm(dim=1) * x.norm()).clamp_min(1e-12)
    return int(corr.argmax())


def suggested_start(curve: Sequence[float], fraction: float = 0.5) -> int:
    """The first step where r_t reaches ``fraction`` of its peak: a gate start for the negative."""
    finite = [r for r in curve if r == r]
    if not finite:
        raise ValueError("the r_t curve has no finite value")
    peak = max(finite)
    return next(t for t, r in enumerate(curve) if r == r and r >= fraction * peak)
