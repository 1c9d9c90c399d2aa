"""Step windows: map the sigma of a model call to the sampler's step, and decide whether a window is on.

Conventions:
- ``steps`` windows follow k-diffusion/diffusers: a term is active at step i of N when
  ⌊start·N⌋ ≤ i < ⌊end·N⌋. "No negative for the first 5 of 50 steps" (Ban et al. 2024) is start = 0.1. The floor
  allows STEP_TOL of a step for binary rounding, so 0.29 at 100 steps (28.999999999999996) and a wired
  gate_step/N both open at the step they name.
- ``percent`` windows are ComfyUI's percent of the denoising schedule, exactly as
  ``ConditioningSetTimestepRange`` applies them: active when percent_to_sigma(end) ≤ σ ≤ percent_to_sigma(start).
- A model call at σ belongs to step i when σ_{i+1} < σ ≤ σ_i of the sampler's own schedule (``sample_sigmas``).
  This is exact for the intermediate calls of dpm_2 and dpmpp_sde and for denoise < 1. Heun's corrector is
  evaluated at σ_{i+1} itself and so already sees step i+1's gates, as ComfyUI's sigma-based ranges do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

STEPS = "steps"
PERCENT = "percent"
UNITS = (STEPS, PERCENT)
SIGMA_RTOL = 1e-4  # a sigma this close to a schedule point is that point (ComfyUI's own tolerance idiom)
STEP_TOL = 1e-6  # of a step: start·N within this of an integer k is k

PercentToSigma = Callable[[float], float]


class InvalidInput(ValueError):
    """A guidance setting that cannot work; ``field`` names the offending setting."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def require_finite(field: str, value: float) -> None:
    """Reject NaN and ±inf, which would turn every later step into NaN."""
    if not math.isfinite(value):
        raise InvalidInput(field, f"must be a finite number, got {value}")


@dataclass(frozen=True)
class Window:
    """The part of sampling where a term is on: [start, end) in ``unit`` (steps or percent)."""

    start: float = 0.0
    end: float = 1.0
    unit: str = STEPS

    def __post_init__(self):
        require_finite("start", self.start)
        require_finite("end", self.end)
        if self.unit not in UNITS:
            raise InvalidInput("unit", f"must be one of {UNITS}, got {self.unit!r}")
        for field, value in (("start", self.start), ("end", self.end)):
            if not 0.0 <= value <= 1.0:
                raise InvalidInput(field, f"must lie in [0, 1], got {value}")
        if self.start > self.end:
            raise InvalidInput("start", f"{self.start} is after end {self.end}")

    @property
    def is_full(self) -> bool:
        """True when the window covers every step of any schedule."""
        return self.start == 0.0 and self.end == 1.0

    def step_range(self, sample_sigmas: Sequence[float], percent_to_sigma: PercentToSigma) -> range:
        """The steps i of this schedule whose own sigma σ_i lies in the window."""
        n = len(sample_sigmas) - 1
        if self.unit == STEPS:
            return range(step_floor(self.start * n), step_floor(self.end * n))
        on = [i for i in range(n) if self.contains_sigma(sample_sigmas[i], percent_to_sigma)]
        return range(on[0], on[-1] + 1) if on else range(0)

    def contains_sigma(self, sigma: float, percent_to_sigma: PercentToSigma) -> bool:
        """A percent window's test on one model call's σ, as ComfyUI's get_area_and_mult does it."""
        return percent_to_sigma(self.end) <= sigma <= percent_to_sigma(self.start)

    def is_active(self, sigma: float, sample_sigmas: Sequence[float], percent_to_sigma: PercentToSigma) -> bool:
        """Whether a model call at σ is inside the window."""
        if self.unit == PERCENT:
            return self.contains_sigma(sigma, percent_to_sigma)
        return step_index(sample_sigmas, sigma) in self.step_range(sample_sigmas, percent_to_sigma)


def step_floor(steps: float) -> int:
    """⌊steps⌋, where a value within STEP_TOL below an integer counts as that integer."""
    return math.floor(steps + STEP_TOL)


def own_step(sample_sigmas: Sequence[float], sigma: float) -> int | None:
    """The step whose own σ_i this call is at, or None for an intermediate call (one record per step)."""
    step = step_index(sample_sigmas, sigma)
    return step if math.isclose(sigma, sample_sigmas[step], rel_tol=SIGMA_RTOL) else None


def step_index(sample_sigmas: Sequence[float], sigma: float) -> int:
    """The step i with σ_{i+1} < σ ≤ σ_i in the sampler's schedule σ_0 > … > σ_N, clamped to [0, N − 1]."""
    n = len(sample_sigmas) - 1
    reached = sum(1 for s in sample_sigmas[:n] if s >= sigma * (1.0 - SIGMA_RTOL))
    return min(max(reached - 1, 0), n - 1)
