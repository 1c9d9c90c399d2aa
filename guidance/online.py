"""The online gate: a negative that opens once the positive's layout has settled, decided during the run itself.

Ban et al. 2024 (https://arxiv.org/abs/2406.02965): the positive fixes the layout in the first steps, and the
negative acts on the content after. The watch reads the positive's denoised (x0) prediction, which the guidance
already evaluates at each step's own σ_i: no extra model evaluation. It measures the layout's change between steps
as the relative L2 change of the low-pass (4× average-pooled) x0, and opens the negative at the step after the
first step (from ``earliest`` on) whose change is below ε, since that step's batch is already evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

POOL = 4


def layout_change(previous: torch.Tensor, current: torch.Tensor, pool: int = POOL) -> torch.Tensor:
    """‖L(x₀ᵗ) − L(x₀ᵗ⁻¹)‖ / ‖L(x₀ᵗ)‖ per sample, L = ``pool``× average pooling: (B, C, *dims) → (B,)."""
    low = lambda x: torch.nn.functional.avg_pool2d(x.float().flatten(1, -3), pool, ceil_mode=True)  # noqa: E731
    a, b = low(previous), low(current)
    return (b - a).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1).clamp_min(1e-12)


def settle(changes: Sequence[float], epsilon: float, earliest: int = 1) -> int:
    """The step the negative opens at, from a run's layout changes (changes[t]: step t − 1 to t; changes[0] unused):
    one after the first step t ≥ max(earliest, 1) with changes[t] < ε; len(changes) (never) when it does not settle."""
    settled = next((t for t in range(max(earliest, 1), len(changes)) if changes[t] < epsilon), None)
    return len(changes) if settled is None else settled + 1


class LayoutWatch:
    """The online form of ``settle``, per image of the batch: fed the positive's x0 at each step's own σ_i, in order.
    Each image's gate opens from its own layout change; its batch-mates never move it."""

    def __init__(self, epsilon: float, earliest: int):
        self.epsilon, self.earliest = epsilon, earliest
        self.reset()

    def reset(self) -> None:
        self.previous: torch.Tensor | None = None
        self.changes: list[list[float]] = []  # changes[t][b]: image b's layout change from step t − 1 to t
        self.opened_at: list[int | None] = []  # per image: the step its negative opens at, once settled

    def update(self, step: int, x0: torch.Tensor) -> None:
        """Record step ``step``'s positive prediction (B, …); open each settled image's gate at step + 1."""
        if self.opened_at and None not in self.opened_at:
            return
        change = [math.inf] * x0.shape[0] if self.previous is None else layout_change(self.previous, x0).tolist()
        self.changes.append(change)
        self.previous = x0.detach()
        self.opened_at = self.opened_at or [None] * len(change)
        if step >= max(self.earliest, 1):
            self.opened_at = [step + 1 if opened is None and c < self.epsilon else opened
                              for opened, c in zip(self.opened_at, change, strict=True)]

    def open_images(self, step: int) -> list[bool]:
        """Per image: whether its gate is open at ``step``."""
        return [opened is not None and step >= opened for opened in self.opened_at]
