"""Negative guidance maths, pure torch: eq. 8 terms, step windows, schedules and the per-call planner."""

from .combine import effective_uncond, guided, negative_effects
from .plan import evaluation_range, needs_empty, plan_call, term_weight
from .schedules import SCHEDULES
from .steps import PERCENT, STEPS, UNITS, InvalidInput, Window, own_step, step_index
from .terms import EMPTY, GuidanceTerm, eq8_terms, standard_neg_scale

__all__ = [
    "EMPTY",
    "PERCENT",
    "SCHEDULES",
    "STEPS",
    "UNITS",
    "GuidanceTerm",
    "InvalidInput",
    "Window",
    "effective_uncond",
    "eq8_terms",
    "evaluation_range",
    "guided",
    "negative_effects",
    "needs_empty",
    "own_step",
    "plan_call",
    "standard_neg_scale",
    "step_index",
    "term_weight",
]
