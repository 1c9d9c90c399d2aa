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
