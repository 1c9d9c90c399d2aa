"""The guidance nodes: thin V3 adapters that validate inputs and call ``patch_model``.

Node ids and input names are a public contract: shared workflows depend on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import comfy.samplers
from comfy_api.v0_0_2 import io, ui

from ..guidance import SCHEDULES, UNITS, InvalidInput, Window, evaluation_range, needs_empty
from .patch import ExtraTerm, NegativeGuidance, check_width, context_width, patch_model

CATEGORY = "sampling/negative guidance"
Terms = io.Custom("NEGATIVE_GUIDANCE_TERMS")
MODES = ("independent", "standard")
MAIN_NAMES = {"scale": "neg_scale", "start": "neg_start", "end": "neg_end", "unit": "window_unit",
              "schedule": "neg_schedule"}
TERM_NAMES = {"scale": "weight", "unit": "window_unit"}


@contextmanager
def blame(node_id: str, names: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a guidance error as '<node>: input '<name>': <reason>', the way a user reads it."""
    try:
        yield
    except InvalidInput as error:
        raise ValueError(f"{node_id}: input '{names.get(error.field, error.field)}': {error.reason}") from None


def window_inputs(prefix: str, what: str) -> list:
    """The start/end/window_unit/schedule inputs of one term's window."""
    return [
        io.Float.Input(f"{prefix}start", default=0.0, min=0.0, max=1.0, step=0.01,
                       tooltip=f"Where {what} switches on, in window_unit. 0 (neutral) = from the first step. "
                               "Ban et al. 2024 skip the first 10% of steps (0.1)."),
        io.Float.Input(f"{prefix}end", default=1.0, min=0.0, max=1.0, step=0.01,
                       tooltip=f"Where {what} switches off, in window_unit. 1 (neutral) = to the last step."),
        io.Combo.Input("window_unit", options=list(UNITS), default=UNITS[0],
                       tooltip="steps: a fraction of the sampling steps, on at step i of N when "
                               "int(start·N) ≤ i < int(end·N). percent: ComfyUI's percent of the denoising "
                               "schedule, exactly as ConditioningSetTimestepRange."),
        io.Combo.Input(f"{prefix}schedule", options=list(SCHEDULES), default="constant",
                       tooltip=f"How {what}'s weight grows over its window: constant (neutral), or a linear or "
                               "cosine ramp that reaches full weight on the window's last step."),
    ]


def model_input():
    return io.Model.Input("model", tooltip="The diffusion model. It is cloned, never changed.")


def terms_input(summed_with: str):
    tooltip = f"Extra weighted negatives or positives from NegativeTerm nodes, summed with {summed_with}."
    return Terms.Input("terms", optional=True, tooltip=tooltip)


def main_inputs() -> list:
    """The inputs the guider and the CFG patch share: empty, mode, neg_scale and the negative's window."""
    return [
        io.Conditioning.Input("empty", optional=True,
                              tooltip="u: the empty prompt, encoded with the same CLIP (CLIPTextEncode with no "
                                      "text). Needed unless mode is standard with a negative that is always on."),
        io.Combo.Input("mode", options=list(MODES), default="independent",
                       tooltip="independent: eq. 8, x̂ = u + cfg·(p − u) − neg_scale·(n − u). standard: eq. 9, "
                               "x̂ = n + cfg·(p − n), Stable Diffusion's negative (neg_scale = cfg − 1, u is "
                               "never evaluated while the negative is on)."),
        io.Float.Input("neg_scale", default=6.0, min=-100.0, max=100.0, step=0.1, round=0.01,
                       tooltip="s⁻: how hard the negative pushes away, against u. 0 = no negative (neutral); "
                               "cfg − 1 = a standard negative prompt. Used in independent mode."),
        *window_inputs("neg_", "the negative"),
    ]


def build_guidance(node_id: str, mode: str, neg_scale: float, neg_start: float, neg_end: float,
                   window_unit: str, neg_schedule: str, empty, terms, cfg: float | None = None) -> NegativeGuidance:
    """Validate a node's inputs into a NegativeGuidance; every error names the node and the input."""
    with blame(node_id, MAIN_NAMES):
        guidance = NegativeGuidance(
            node_id=node_id,
            neg_scale=None if mode == "standard" else neg_scale,
            window=Window(neg_start, neg_end, window_unit),
            schedule=neg_schedule,
            empty=empty,
            extras=tuple(terms or ()),
        )
        if cfg is not None:
            guidance.terms(cfg)
        # standard mode cancels u at any cfg (probe one ≠ 1); in independent mode c_u = 1 − cfg + neg_scale
        if empty is None and (mode == "independent" or needs_empty(guidance.terms(cfg=2.0))):
            raise InvalidInput("empty", "is needed: eq. 8 evaluates u, the empty prompt, at some steps. Connect "
                                        "a CLIPTextEncode of an empty prompt, or use mode standard with an "
                                        "always-on negative and no extra terms.")
    return guidance


def guidance_conditionings(guidance: NegativeGuidance) -> list[tuple[str, list]]:
    """(input name, CONDITIONING) of u and every extra term."""
    empty = [("empty", guidance.empty)] if guidance.empty is not None else []
    return empty + [("terms", term.conditioning) for term in guidance.extras]


def check_widths(node_id: str, model, conditionings: list[tuple[str, list]]) -> None:
    """Every conditioning must fit the model's context width (or the first one's, when the model has none)."""
    width = model.model.model_config.unet_config.get("context_dim")
    source = "the model"
    if width is None and conditionings:
        width, source = context_width(conditionings[0][1]), f"'{conditionings[0][0]}'"
    for name, conditioning in conditionings:
        check_width(node_id, name, conditioning, width, source)


def cost_text(guidance: NegativeGuidance) -> str:
    """The model evaluations per step, for the node's ui text (exact per-step counts go to the log)."""
    ranges = [evaluation_range(guidance.terms(cfg)) for cfg in (2.0, 3.0)]  # any two cfgs: c_u's zero is one cfg
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    count = f"{low}" if low == high else f"{low}–{high}"
    return f"{count} model evaluations per step (stock CFG: 2; DualCFGGuider, PerpNegGuider: 3)"


class NegativeGuidanceGuider(io.ComfyNode):
    """GUIDER for SamplerCustomAdvanced: eq. 8 with independent scales and a gated negative."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NegativeGuidanceGuider",
            display_name="Negative Guidance Guider (eq. 8)",
            category=CATEGORY,
            description="Guidance with an independent negative scale: x̂ = u + cfg·(p − u) − neg_scale·(n − u) "
                        "(eq. 8), the negative only inside its window. Evaluates only the prompts each step "
                        "needs, in one batched model call. Plug into SamplerCustomAdvanced.",
            inputs=[
                model_input(),
                io.Conditioning.Input("positive", tooltip="p: the positive prompt."),
                io.Conditioning.Input("negative", tooltip="n: the negative prompt."),
                io.Float.Input("cfg", default=7.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="s⁺: the positive guidance scale against u. 1 = no guidance (neutral)."),
                *main_inputs(),
                terms_input("this one"),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, mode, cfg, neg_scale, neg_start, neg_end, window_unit,
                neg_schedule, empty=None, terms=None) -> io.NodeOutput:
        node = "NegativeGuidanceGuider"
        guidance = build_guidance(node, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule, empty,
                                  terms, cfg)
        check_widths(node, model, [("positive", positive), ("negative", negative), *guidance_conditionings(guidance)])
        guider = comfy.samplers.CFGGuider(patch_model(model, guidance))
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        return io.NodeOutput(guider, ui=ui.PreviewText(cost_text(guidance)))


class NegativeGuidanceCFG(io.ComfyNode):
    """MODEL patch for the stock KSampler: its positive, negative and cfg become p, n and s⁺ of eq. 8."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NegativeGuidanceCFG",
            display_name="Negative Guidance CFG (KSampler patch)",
            category=CATEGORY,
            description="Patches a model so that the stock KSampler computes x̂ = u + cfg·(p − u) − "
                        "neg_scale·(n − u) (eq. 8) with its own positive, negative and cfg, the negative only "
                        "inside its window. Other CFG patches (RescaleCFG, CFGZeroStar, APG, PAG) keep working.",
            inputs=[
                model_input(),
                *main_inputs(),
                terms_input("the KSampler's"),
            ],
            outputs=[io.Model.Output()],
        )

    @classmethod
    def execute(cls, model, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule, empty=None,
                terms=None) -> io.NodeOutput:
        node = "NegativeGuidanceCFG"
        guidance = build_guidance(node, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule, empty, terms)
        check_widths(node, model, guidance_conditionings(guidance))
        return io.NodeOutput(patch_model(model, guidance), ui=ui.PreviewText(cost_text(guidance)))


class NegativeTerm(io.ComfyNode):
    """One more weighted negative (or positive) with its own window, chained into a guider or patch."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NegativeTerm",
            display_name="Negative Guidance Term",
            category=CATEGORY,
            description="Adds −weight·(c − u) to the guidance, inside its own window. Chain several: their "
                        "terms are summed, each with its own weight and window (ConditioningCombine would "
                        "average them instead).",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="c: the prompt of this term."),
                io.Float.Input("weight", default=3.0, min=-100.0, max=100.0, step=0.1, round=0.01,
                               tooltip="How hard this term pushes away from c, against u. 0 = off (neutral, "
                                       "never evaluated); a negative weight pulls toward c like a positive."),
                *window_inputs("", "this term"),
                Terms.Input("terms", optional=True, tooltip="Terms from earlier NegativeTerm nodes."),
            ],
            outputs=[Terms.Output(display_name="terms")],
        )

    @classmethod
    def execute(cls, conditioning, weight, start, end, window_unit, schedule, terms=None) -> io.NodeOutput:
        with blame("NegativeTerm", TERM_NAMES):
            term = ExtraTerm(conditioning, weight, Window(start, end, window_unit), schedule)
            term.guidance_term(0)
        return io.NodeOutput((*(terms or ()), term))
