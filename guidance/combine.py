"""Eq. 8 on model predictions, and its fold into ComfyUI's two-slot CFG.

Guidance is affine (Σ c_k = 1), so the same coefficients hold on noise, v or denoised (x0) predictions:
ComfyUI hands over x0.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .terms import EMPTY


def _around_base(preds: Mapping[str, torch.Tensor], coefficients: Mapping[str, float], base: str) -> torch.Tensor:
    """x_b + Σ_{k≠b} c_k·(x_k − x_b), in ComfyUI's own arithmetic order ``uncond + (cond − uncond)·scale``."""
    out = preds[base]
    for key, c in coefficients.items():
        if key != base:
            out = out + (preds[key] - preds[base]) * c
    return out


def _pick_base(coefficients: Mapping[str, float]) -> str:
    """u when it is evaluated, else the first negative (eq. 9: n), else the first term."""
    if EMPTY in coefficients:
        return EMPTY
    return next((k for k, c in coefficients.items() if c < 0.0), next(iter(coefficients)))


def guided(preds: Mapping[str, torch.Tensor], coefficients: Mapping[str, float]) -> torch.Tensor:
    """x̂ = u + Σ_j w⁺_j (p_j − u) − Σ_i w⁻_i (n_i − u) (Ban et al. 2024, eq. 8), given as Σ c_k x_k, Σ c_k = 1."""
    return _around_base(preds, coefficients, _pick_base(coefficients))


def negative_effects(preds: Mapping[str, torch.Tensor], coefficients: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """Where each negative acts: |w⁻_i·(n_i − u)| averaged over channels, (B, H, W), for every negative term.

    Empty when u is not evaluated (eq. 9 while n is on), since the term is then not written against u.
    """
    if EMPTY not in preds:
        return {}
    u = preds[EMPTY]
    return {k: ((preds[k] - u) * c).abs().mean(dim=1) for k, c in coefficients.items() if c < 0 and k != EMPTY}


def effective_uncond(
    preds: Mapping[str, torch.Tensor], coefficients: Mapping[str, float], cond_key: str
) -> torch.Tensor:
    """ū with ū + s(p − ū) = x̂ for s = c_p: ū = Σ_{k≠p} c_k/(1 − s)·x_k, the affine mix of every other term.

    This lets ComfyUI's stock cfg_function and its cfg hooks compute eq. 8. For eq. 9 ū is n itself and
    for plain CFG ū is u, so those cases keep ComfyUI's exact arithmetic. Undefined for s = 1.
    """
    rest = {k: c / (1.0 - coefficients[cond_key]) for k, c in coefficients.items() if k != cond_key}
    return _around_base(preds, rest, _pick_base(rest))
