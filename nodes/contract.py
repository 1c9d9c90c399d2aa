"""What the guidance patch and the attention capture tell each other, and the guider keys they share.

- ``GUIDANCE`` (model_options): the patch's ``NegativeGuidance``; the capture reads it to say why a negative
  was never evaluated.
- ``EFFECTS`` (transformer_options): the capture's recorder; the patch's batch function hands it |w⁻·(n − u)| of
  each negative term at each step's own σ_i (``add_effect(step, term, effect)``).
- ``EMPTY_KEY`` and ``term_key(i)``: the guider.conds keys under which the patch adds u and the NegativeTerms.
"""

from __future__ import annotations

KEY = "x-negative-guidance"
GUIDANCE = f"{KEY}.guidance"
EFFECTS = f"{KEY}.effects"
EMPTY_KEY = f"{KEY}.empty"


def term_key(index: int) -> str:
    """The key of the index-th NegativeTerm, in the planner and in guider.conds."""
    return f"{KEY}.term{index}"


def term_name(key: str) -> str:
    """A planner key as the user knows it: 'negative' or 'term0'."""
    return key.removeprefix(f"{KEY}.")
