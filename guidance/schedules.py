"""Schedule shapes: how a term's weight grows over its window.

Each shape maps progress t ∈ (0, 1] through the window to a factor in (0, 1]. Progress is
(k + 1) / K at the k-th of K active steps, so a ramp reaches full weight on the window's last step
and is never 0 inside the window.
"""

from __future__ import annotations

import math


def constant(t: float) -> float:
    """f(t) = 1: full weight on every step of the window."""
    return 1.0


def linear(t: float) -> float:
    """f(t) = t: a linear ramp up to full weight."""
    return t


def cosine(t: float) -> float:
    """f(t) = (1 − cos πt) / 2: a cosine ease-in up to full weight."""
    return 0.5 - 0.5 * math.cos(math.pi * t)


SCHEDULES = {"constant": constant, "linear": linear, "cosine": cosine}
