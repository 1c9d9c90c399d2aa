"""The planner: which conditionings one model call must evaluate, and with which coefficients."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .nag import AttentionTerm
from .schedules import SCHEDULES
from .steps import PercentToSigma, step_index
from .terms import EMPTY, GuidanceTerm

ZERO_TOL = 1e-9  # |coefficient| below this (relative to the scales) is float noise of an exact 0


def term_weight(term: GuidanceTerm | AttentionTerm, sigma: float, sample_sigmas: Sequence[float],
                to_sigma: PercentToSigma) -> float:
    """w(σ) = scale · shape(t) inside the window and 0 outside; t = (k + 1)/K at the k-th of K active steps."""
    if term.scale == 0.0 or not term.window.is_active(sigma, sample_sigmas, to_sigma):
        return 0.0
    steps = term.window.step_range(sample_sigmas, to_sigma)
    if len(steps) == 0:  # a percent window that holds intermediate calls only
        return term.scale
    k = min(max(step_index(sample_sigmas, sigma) - steps.start, 0), len(steps) - 1)
    return term.scale * SCHEDULES[term.schedule]((k + 1) / len(steps))


def empty_coefficient(weights: Sequence[float]) -> float:
    """c_u = 1 − Σ_k w_k, snapped to 0 when it is float noise (eq. 9: 1 − s + (s − 1))."""
    c_u = 1.0 - math.fsum(weights)
    return 0.0 if abs(c_u) <= ZERO_TOL * max([1.0, *(abs(w) for w in weights)]) else c_u


def plan_call(
    terms: Sequence[GuidanceTerm], sigma: float, sample_sigmas: Sequence[float], to_sigma: PercentToSigma
) -> dict[str, float]:
    """Affine coefficients {key: c} of x̂ = Σ c_k x_k for one call, omitting every zero; Σ c_k = 1.

    Terms keep their order and u ("empty") comes last. u is skipped when its coefficient is 0 (eq. 9), and
    a term outside its window or with scale 0 is skipped, so the model evaluates only what is needed.
    """
    coefficients = {}
    for term in terms:
        weight = term_weight(term, sigma, sample_sigmas, to_sigma)
        if weight != 0.0:
            coefficients[term.key] = coefficients.get(term.key, 0.0) + weight
    c_u = empty_coefficient(list(coefficients.values()))
    if c_u != 0.0:
        coefficients[EMPTY] = c_u
    return coefficients


def evaluation_range(terms: Sequence[GuidanceTerm]) -> tuple[int, int]:
    """The fewest and most conditionings one model call can need, over every on/off/ramp state of the windows.

    A term with a full window is always on; a windowed one can be off. The fewest: only the always-on terms, at
    full weight, plus u unless their weights sum to 1 (c_u = 1 − Σ w = 0). The most: every term on, plus u unless
    they sum to 1 with no ramp (inside a ramp c_u varies, so it is nonzero somewhere). Windows that never overlap
    make the real maximum lower; each run logs its exact plan. O(n), where enumerating states would be O(3ⁿ).
    """
    live = [t for t in terms if t.scale != 0.0]
    always = [t for t in live if t.window.is_full]
    fewest = len(always) + (empty_coefficient([t.scale for t in always]) != 0.0)
    ramp = any(t.schedule != "constant" for t in live)
    most = len(live) + (ramp or empty_coefficient([t.scale for t in live]) != 0.0)
    return fewest, most


def needs_empty(terms: Sequence[GuidanceTerm]) -> bool:
    """Whether some model call can need u, the empty prompt: at a ramp, when a windowed term switches (c_u cannot be
    0 both with and without it), or when the always-on weights do not sum to 1."""
    live = [t for t in terms if t.scale != 0.0]
    always = [t for t in live if t.window.is_full]
    return (any(t.schedule != "constant" for t in live) or len(always) < len(live)
            or empty_coefficient([t.scale for t in always]) != 0.0)


def plan_attention(terms: Sequence[AttentionTerm], sigma: float, sample_sigmas: Sequence[float],
                   to_sigma: PercentToSigma) -> dict[str, float]:
    """φᵢ(t) of every attention-space negative active at this call, by key, omitting every zero: a term outside its
    window or with φ = 0 is left out, so its attention is never computed. Same windows and schedules as eq. 8 terms."""
    weights = {}
    for term in terms:
        weight = term_weight(term, sigma, sample_sigmas, to_sigma)
        if weight != 0.0:
            weights[term.key] = weight
    return weights


def attention_range(terms: Sequence[AttentionTerm]) -> tuple[int, int]:
    """The fewest and most attention-space negatives one model call can compute: the always-on ones, and all."""
    live = [t for t in terms if t.scale != 0.0]
    return sum(1 for t in live if t.window.is_full), len(live)
