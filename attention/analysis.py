"""From a finished AttentionStore to one report: r_t curves, the suggested gate, word maps and effect maps
(Ban et al. 2024, sec. 4, https://arxiv.org/abs/2406.02965).

Batches: r_t is computed per image (its own layer scores), and the curve the gate reads is their mean.
Video: a map's score covers all its frames; the word maps shown are the mean over frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .gates import lock_on, onset
from .metrics import r_t, score_index
from .related import choose
from .store import AttentionStore


@dataclass(frozen=True)
class Curve:
    """r_t of one negative word against its related positive word r(i), per step (NaN where the negative was off).

    ``r`` is the mean over the batch's images of ``per_image``; ``related_by`` says how r(i) was chosen.
    """

    word: str
    related: str
    related_by: str
    r: list[float]
    per_image: list[list[float]]


@dataclass(frozen=True)
class Report:
    """Everything AttentionRt shows and exports for one run."""

    score: str
    steps: list[int]
    sigmas: list[float]
    curves: list[Curve]
    gate_step: int
    gate_fraction: float
    gates: dict[str, int]  # every rule's suggested first step (attention/gates.py)
    maps: dict[str, torch.Tensor]  # branch → (steps, B, words, h, w): summed over layers, frame mean
    effects: dict[str, torch.Tensor] = field(default_factory=dict)  # term → (steps, h, w), batch and frame mean

    @property
    def gate_start(self) -> float:
        """The gate as a neg_start in steps units: opens exactly at gate_step (see guidance.steps)."""
        return self.gate_step / len(self.steps)

    def mean_curve(self) -> list[float]:
        return mean_over([c.r for c in self.curves])

    def to_json(self) -> dict:
        """The report as JSON data: NaN (a step where the negative was off) becomes null."""
        return {
            "score": self.score, "steps": self.steps, "sigmas": self.sigmas,
            "curves": {c.word: {"related": c.related, "related_by": c.related_by, "r": json_numbers(c.r),
                                "per_image": [json_numbers(r) for r in c.per_image]} for c in self.curves},
            "mean": json_numbers(self.mean_curve()), "gate_step": self.gate_step, "gate_start": self.gate_start,
            "gate_fraction": self.gate_fraction, "gates": self.gates,
            "effect": {term: maps.flatten(1).mean(1).tolist() for term, maps in self.effects.items()},
        }


def json_numbers(values: Sequence[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def mean_over(curves: Sequence[Sequence[float]]) -> list[float]:
    """The mean of several curves at each step; NaN where any is NaN."""
    return [sum(values) / len(values) for values in zip(*curves, strict=True)]


def spatial(maps: torch.Tensor) -> torch.Tensor:
    """(B, words, *grid) → (B, words, H, W): the mean over frames for a video grid."""
    maps = maps.float()
    return maps.flatten(2, -3).mean(2) if maps.ndim > 4 else maps


def step_maps(store: AttentionStore, branch: str) -> torch.Tensor:
    """Each step's word maps of one branch, summed over layers at the largest layer size: (steps, B, words, h, w);
    zero at steps where the branch was not evaluated."""
    records = {(t, layer): m for (t, layer, b), m in store.records.items() if b == branch}
    size = tuple(max((m.shape[-2:] for m in records.values()), key=lambda s: s[0] * s[1]))
    images, words = next(iter(records.values())).shape[:2]
    resize = lambda m: F.interpolate(spatial(m), size=size, mode="bilinear")  # noqa: E731
    per_step = [sum((resize(m) for (t, _), m in records.items() if t == step), torch.zeros(images, words, *size))
                for step in store.steps()]
    return torch.stack(per_step)


def score_sums(store: AttentionStore, branch: str) -> dict[int, torch.Tensor]:
    """step → Σ_k s(A_k) over the layers k of one branch: (B, words, scores), at the steps it was evaluated."""
    sums: dict[int, torch.Tensor] = {}
    for (t, _, b), scores in store.scores.items():
        if b == branch:
            sums[t] = sums[t] + scores if t in sums else scores.clone()
    return sums


def rt_per_image(neg: dict[int, torch.Tensor], pos: dict[int, torch.Tensor], steps: Sequence[int], negative: int,
                 positive: int, column: int) -> list[list[float]]:
    """r_t = Σ_k s(A_k,neg(i)) / Σ_k s(A_k,pos(r(i))) per image and step; NaN where either branch was off."""
    images = next(iter(neg.values())).shape[0]
    return [[r_t([neg[t][b, negative, column].item()], [pos[t][b, positive, column].item()])
             if t in neg and t in pos else math.nan for t in steps] for b in range(images)]


LOCK_ON = 0.9  # rule (b): the positive's maps correlate this much with their final maps


def analyse(store: AttentionStore, words: Mapping[str, Sequence[str]], score: str, gate_fraction: float,
            related: Mapping[str, str], embeddings: Mapping[str, torch.Tensor] | None = None,
            tick: Callable[[], None] = lambda: None, positive_text: str = "") -> Report:
    """The report of one run: r(i) from ``related``, else by attention/related.py's ``choose`` (the same word, the
    prompt's subject, or the best-correlated content word), r_t per image and their mean, and the gate by rule (a):
    the first step where the mean r_t has risen ``gate_fraction`` of the way from its start to its peak.

    embeddings: branch → (words, width), each captured word's rows of its encoded prompt, averaged; positive_text: the
    positive prompt as typed, whose subject is r(i) in English.
    """
    column = score_index(score)
    negatives, positives = list(words["negative"]), list(words["positive"])
    maps = {branch: step_maps(store, branch) for branch in ("positive", "negative")}
    aggregate = {branch: m.sum((0, 1)) for branch, m in maps.items()}  # (words, h, w) over steps and images
    sums = {branch: score_sums(store, branch) for branch in ("positive", "negative")}
    curves = []
    for i, word in enumerate(negatives):
        if word in related:
            j, by = positives.index(related[word]), "given"
        else:
            choice = choose(word, aggregate["negative"][i], aggregate["positive"], positives, positive_text,
                            *((embeddings["negative"][i], embeddings["positive"]) if embeddings else ()))
            j, by = choice.index, choice.reason
        per_image = rt_per_image(sums["negative"], sums["positive"], store.steps(), i, j, column)
        curves.append(Curve(word, positives[j], by, mean_over(per_image), per_image))
        tick()
    mean = mean_over([c.r for c in curves])
    gates = {"r_t onset": onset(mean, gate_fraction), "positive lock-on": lock_on(maps["positive"].mean(1), LOCK_ON)}
    effects = {term: store.series(lambda t, term=term: spatial_effect(store.effects.get((t, term))))
               for term in sorted({term for _, term in store.effects})}
    return Report(score, store.steps(), [store.sigmas[t] for t in store.steps()], curves, gates["r_t onset"],
                  gate_fraction, gates, maps, effects)


def spatial_effect(effect: torch.Tensor | None) -> torch.Tensor | None:
    """An effect map (B, *latent grid) as (H, W): the mean over images and frames."""
    if effect is None:
        return None
    effect = effect.float().mean(0)
    return effect.flatten(0, -3).mean(0) if effect.ndim > 2 else effect
