"""When to start a negative: rules grounded in Ban et al. 2024's mechanism (https://arxiv.org/abs/2406.02965): the
positive fixes the layout in the first steps, and the negative's attention locks on later.

Each rule reads one run and returns the first step at which the negative should act. (a) and (b) read a captured
probe run; (c), which reads the denoised predictions, lives in guidance/online.py and also runs online.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .related import pearson


def finite(values: Sequence[float]) -> list[tuple[int, float]]:
    return [(t, v) for t, v in enumerate(values) if not math.isnan(v)]


def onset(curve: Sequence[float], fraction: float) -> int:
    """(a) r_t's onset relative to its own start: the first step t with r_t − r₀ ≥ f·(max r − r₀); step 0 when r_t
    never rises above r₀. NaN steps (the negative off) are skipped."""
    points = finite(curve)
    if not points:
        raise ValueError("the r_t curve has no finite value")
    start, peak = points[0][1], max(v for _, v in points)
    if peak <= start:
        return 0
    return next(t for t, v in points if v - start >= fraction * (peak - start))


def lock_on(maps: torch.Tensor, rho: float) -> int:
    """(b) The positive's lock-on: the first step whose word maps correlate ≥ ρ with their final maps, on average
    over the words. maps: (steps, words, h, w)."""
    final = maps[-1]
    for t in range(len(maps)):
        mean = sum(pearson(maps[t, w], final[w:w + 1]).item() for w in range(maps.shape[1])) / maps.shape[1]
        if mean >= rho:
            return t
    return len(maps) - 1
