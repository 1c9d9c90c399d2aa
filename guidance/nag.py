"""Attention-space negatives: Normalized Attention Guidance (NAG) with several negatives, summed.

In one cross- or joint-attention layer, with Z⁺ = Attn(Q, K⁺, V⁺) the layer's own output for the positive context and
Z⁻ᵢ = Attn(Q, K⁻ᵢ, V⁻ᵢ) the same queries over the i-th negative's keys and values:

    Z̃ = Z⁺ + Σᵢ φᵢ(t)·(Z⁺ − Z⁻ᵢ)          (1)  (core ComfyUI's NAGuidance writes z⁺·s − z⁻·(s − 1): φ = s − 1)
    N = ‖Z̃‖₁ / ‖Z⁺‖₁                        (2)  per token, over the channels (every head together)
    Ẑ = Z̃ · min(N, τ) / N                   (3)
    Z = α·Ẑ + (1 − α)·Z⁺                     (4)

Reference: Chen, Bandyopadhyay, Zou, Song 2025, "Normalized Attention Guidance: Universal Negative Guidance for
Diffusion Models", https://arxiv.org/abs/2505.21179 (eqs. 1–4 above are its Z̃, N, Ẑ and the α blend).

Several negatives share one normalisation (2)–(4), so they take one τ and one α: the φ-weighted mean of the active
terms' τ and α at this step (exactly their common value when they agree, the usual case).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .schedules import SCHEDULES
from .steps import InvalidInput, Window, require_finite


@dataclass(frozen=True)
class AttentionTerm:
    """One attention-space negative: φ (its ``scale``), τ, α, a window and a schedule shape.

    φ ≥ 0 (0 is neutral: never computed); τ ≥ 1 caps the growth ‖Z̃‖₁/‖Z⁺‖₁ (1: no growth at all); α ∈ [0, 1] blends
    the normalised output with Z⁺ (0 is neutral). The window and schedule work exactly as for an eq. 8 term.
    """

    key: str
    scale: float
    tau: float = 2.5
    alpha: float = 0.25
    window: Window = field(default_factory=Window)
    schedule: str = "constant"

    def __post_init__(self):
        for name, value in (("scale", self.scale), ("tau", self.tau), ("alpha", self.alpha)):
            require_finite(name, value)
        if self.scale < 0.0:
            raise InvalidInput("scale", f"must be ≥ 0 (0 = off), got {self.scale}")
        if self.tau < 1.0:
            raise InvalidInput("tau", f"must be ≥ 1 (1 = the output's L1 norm may not grow), got {self.tau}")
        if not 0.0 <= self.alpha <= 1.0:
            raise InvalidInput("alpha", f"must lie in [0, 1] (0 = no effect, 1 = the normalised output), got "
                                        f"{self.alpha}")
        if self.schedule not in SCHEDULES:
            raise InvalidInput("schedule", f"must be one of {tuple(SCHEDULES)}, got {self.schedule!r}")


def shared_normalisation(terms: Sequence[AttentionTerm], weights: Sequence[float]) -> tuple[float, float]:
    """(τ, α) of one call: the φᵢ(t)-weighted means over the active terms (their common value when they agree)."""
    total = math.fsum(weights)
    if all(t.tau == terms[0].tau for t in terms) and all(t.alpha == terms[0].alpha for t in terms):
        return terms[0].tau, terms[0].alpha
    tau = math.fsum(w * t.tau for t, w in zip(terms, weights, strict=True)) / total
    alpha = math.fsum(w * t.alpha for t, w in zip(terms, weights, strict=True)) / total
    return tau, alpha


def normalized_attention_guidance(z_pos: torch.Tensor, z_negs: Sequence[torch.Tensor], phis: Sequence[float],
                                  tau: float, alpha: float) -> torch.Tensor:
    """Z = α·Ẑ + (1 − α)·Z⁺ with Ẑ = Z̃·min(N, τ)/N, N = ‖Z̃‖₁/‖Z⁺‖₁, Z̃ = Z⁺ + Σᵢ φᵢ(Z⁺ − Z⁻ᵢ) (Chen et al. 2025,
    https://arxiv.org/abs/2505.21179).

    Args:
        z_pos: Z⁺, the layer's attention output (B, L, C), C = heads·d: every head of a token together.
        z_negs: Z⁻ᵢ, each (B, L, C), the same queries over the i-th negative's keys and values.
        phis: φᵢ(t) ≥ 0, one per negative (0: no effect).
        tau: τ ≥ 1, the most ‖Z̃‖₁ may grow over ‖Z⁺‖₁, per token.
        alpha: α ∈ [0, 1]; 0 gives Z⁺ (neutral).
    Returns Z (B, L, C) in z_pos's dtype; computed in fp32. Where N ≤ τ (N = 0 included) Ẑ = Z̃.
    """
    pos = z_pos.float()
    guided = pos.clone()  # every later step is in place: one (B, L, C) buffer in all
    for z_neg, phi in zip(z_negs, phis, strict=True):
        guided.add_(torch.sub(pos, z_neg.float()).mul_(phi))
    l1 = lambda x: torch.linalg.vector_norm(x, ord=1, dim=-1, keepdim=True)  # noqa: E731
    ratio = l1(guided) / l1(pos)  # N, (B, L, 1)
    guided.mul_(torch.where(ratio > tau, tau / ratio, torch.ones_like(ratio)))
    return guided.mul_(alpha).add_(pos, alpha=1.0 - alpha).to(z_pos.dtype)
