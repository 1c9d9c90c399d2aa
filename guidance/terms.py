"""Guidance terms: one conditioning, a signed scale, a window and a schedule shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from .schedules import SCHEDULES
from .steps import InvalidInput, Window, require_finite

EMPTY = "empty"  # the key of u, the empty prompt's prediction


@dataclass(frozen=True)
class GuidanceTerm:
    """A term w(t)·(x_c − u) of eq. 8; ``scale`` is w, signed as in Composable Diffusion.

    A positive prompt has scale s⁺ > 0 (pulls toward it); a negative prompt has scale −s⁻ < 0 (pushes away).
    Scale 0 is neutral: the term is never evaluated.
    """

    key: str
    scale: float
    window: Window = field(default_factory=Window)
    schedule: str = "constant"

    def __post_init__(self):
        require_finite("scale", self.scale)
        if self.schedule not in SCHEDULES:
            raise InvalidInput("schedule", f"must be one of {tuple(SCHEDULES)}, got {self.schedule!r}")
        if self.key == EMPTY:
            raise InvalidInput("key", f"{EMPTY!r} is reserved for the empty prompt u")


def eq8_terms(cfg: float, neg_scale: float, window: Window, schedule: str = "constant") -> list[GuidanceTerm]:
    """The two terms of eq. 8, u + s⁺(p − u) − s⁻(n − u) (Ban et al. 2024, eq. 8), keyed positive/negative."""
    require_finite("cfg", cfg)
    require_finite("neg_scale", neg_scale)
    return [GuidanceTerm("positive", cfg), GuidanceTerm("negative", -neg_scale, window, schedule)]


def standard_neg_scale(cfg: float) -> float:
    """s⁻ = s⁺ − 1, which turns eq. 8 into Stable Diffusion's eq. 9, n + s(p − n)."""
    return cfg - 1.0
