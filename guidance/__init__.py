"""Negative guidance maths, pure torch: eq. 8 terms, attention-space (NAG) terms, step windows, schedules and the
per-call planner."""

from .combine import effective_uncond, guided, negative_effects
from .nag import AttentionTerm, normalized_attention_guidance, shared_normalisation
from .plan import attention_range, evaluation_range, needs_empty, plan_attention, plan_call, term_weight
from .schedules import SCHEDULES
from .steps import PERCENT, STEPS, UNITS, InvalidInput, Window, own_step, step_index
from .terms import EMPTY, GuidanceTerm, eq8_terms, standard_neg_scale

__all__ = [
    "AttentionTerm",
    "EMPTY",
    "PERCENT",
    "SCHEDULES",
    "STEPS",
    "UNITS",
    "GuidanceTerm",
    "InvalidInput",
    "Window",
    "attention_range",
    "effective_uncond",
    "eq8_terms",
    "evaluation_range",
    "guided",
    "negative_effects",
    "needs_empty",
    "normalized_attention_guidance",
    "own_step",
    "plan_attention",
    "plan_call",
    "shared_normalisation",
    "standard_neg_scale",
    "step_index",
    "term_weight",
]
