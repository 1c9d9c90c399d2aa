"""From a filled AttentionStore to r_t curves, per-step word maps and effect maps (Ban et al. 2024, sec. 4)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from .metrics import r_curve, related_token, score_index
from .store import AttentionStore


def branch_layers(store: AttentionStore, branch: str) -> dict[int, list[torch.Tensor]]:
    """step → the maps (B, words, h, w) of every layer of one branch at that step."""
    return {t: list(store.layers(t, branch).values()) for t in store.steps()}


def step_maps(store: AttentionStore, branch: str) -> torch.Tensor:
    """The first sample's word maps summed over layers at the largest layer resolution: (steps, words, h, w);
    zero at steps where the branch was not evaluated."""
    layers = branch_layers(store, branch)
    maps = [m for per_step in layers.values() for m in per_step]
    size = tuple(max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1]))
    empty = torch.zeros(maps[0].shape[1], *size)
    resize = lambda m: F.interpolate(m[:1].float(), size=size, mode="bilinear")[0]  # noqa: E731
    return torch.stack([sum((resize(m) for m in layers[t]), empty) for t in store.steps()])


def word_scores(store: AttentionStore, branch: str, word: int, score: str, sample: int = 0) -> dict[int, list[float]]:
    """step → one word's map score at every layer of a branch, for one sample of the batch."""
    column = score_index(score)
    return {t: [s[sample, word, column].item() for s in store.layers(t, branch, "scores").values()]
            for t in store.steps()}


def sample_rt(store: AttentionStore, negative: int, positive: int, score: str, sample: int = 0) -> list[float]:
    """r_t per step of negative word ``negative`` against positive word ``positive`` = r(i), for one sample."""
    return r_curve(word_scores(store, "negative", negative, score, sample),
                   word_scores(store, "positive", positive, score, sample), store.steps())


def rt_curves(
    store: AttentionStore,
    negatives: Sequence[str],
    positives: Sequence[str],
    score: str,
    related: Mapping[str, str],
    aggregates: tuple[torch.Tensor, torch.Tensor],
    tick: Callable[[], None] = lambda: None,
) -> dict[str, dict]:
    """{negative word: {"related": r(i), "r": r_t per step}}; r(i) from ``related`` or by map correlation; r_t from
    the scores of the native maps (first sample).

    aggregates: the (words, h, w) maps of the negative and positive branch summed over steps.
    """
    curves = {}
    for i, word in enumerate(negatives):
        j = positives.index(related[word]) if word in related else related_token(aggregates[0][i], aggregates[1])
        r = sample_rt(store, i, j, score)
        curves[word] = {"related": positives[j], "r": r}
        tick()
    return curves


def mean_curve(curves: Mapping[str, dict]) -> list[float]:
    """The mean r_t over the negative words at each step (NaN where the negative was off)."""
    return [sum(values) / len(values) for values in zip(*(c["r"] for c in curves.values()), strict=True)]


def effect_terms(store: AttentionStore) -> list[str]:
    return sorted({term for _, term in store.effects})


def effect_maps(store: AttentionStore) -> torch.Tensor:
    """|w⁻·(n − u)| of the first sample per negative term and step, 0 where the term was off: (terms, steps, h, w)."""
    terms = effect_terms(store)
    if not terms:
        return torch.zeros(0)
    series = [store.series(lambda t, term=term: store.effects.get((t, term))) for term in terms]
    return torch.stack(series).float()


def json_numbers(values: Sequence[float]) -> list[float | None]:
    """NaN (a step where the negative was not evaluated) becomes null, as JSON has no NaN."""
    return [None if math.isnan(v) else v for v in values]
