"""The guidance nodes: thin V3 adapters that validate inputs and call ``patch_model``.

Node ids and input names are a public contract: shared workflows depend on them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import comfy.samplers
from comfy_api.v0_0_2 import io, ui

from ..guidance import SCHEDULES, UNITS, InvalidInput, Window, attention_range, evaluation_range, needs_empty
from .inputs import check_combo, check_finite, first_error
from .nag import ALL, STREAMS, AttentionNegative
from .patch import ExtraTerm, NegativeGuidance, patch_model
from .prompts import encode, same_conditioning
from .run_checks import check_width, context_width

CATEGORY = "sampling/negative guidance"
Terms = io.Custom("NEGATIVE_GUIDANCE_TERMS")
MODES = ("independent", "standard")
MAIN_NAMES = {"scale": "neg_scale", "start": "neg_start", "end": "neg_end", "unit": "window_unit",
              "schedule": "neg_schedule"}
TERM_NAMES = {"scale": "weight", "unit": "window_unit"}
ATTENTION_NAMES = {"unit": "window_unit"}


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
                              tooltip="u: the empty prompt. Leave it unconnected and connect clip instead: the node "
                                      "encodes \"\" itself. Wired, it must be CLIPTextEncode of an empty text with "
                                      "the model's own CLIP (checked against clip when both are connected)."),
        io.Combo.Input("mode", options=list(MODES), default="independent",
                       tooltip="independent: eq. 8, x̂ = u + cfg·(p − u) − neg_scale·(n − u). standard: eq. 9, "
                               "x̂ = n + cfg·(p − n), Stable Diffusion's negative (neg_scale = cfg − 1, u is "
                               "never evaluated while the negative is on)."),
        io.Float.Input("neg_scale", default=6.0, min=-100.0, max=100.0, step=0.1, round=0.01,
                       tooltip="s⁻: how hard the negative pushes away, against u. 0 = no negative (neutral); "
                               "cfg − 1 = a standard negative prompt. Used in independent mode."),
        *window_inputs("neg_", "the negative"),
    ]


def auto_start_input():
    return io.Float.Input("auto_start", default=0.0, min=0.0, max=1.0, step=0.001, round=0.0001, optional=True,
                          tooltip="The online gate. 0 (neutral): the negative follows its window. Above 0: ε; the "
                                  "negative waits for the positive's layout to settle, then runs from the next step "
                                  "(never before neg_start): settled when the low-pass change of the positive's "
                                  "denoised prediction from one step to the next is below ε, for each image of the "
                                  "batch on its own. No extra model evaluation; the log says the step it chose.")


def clip_input():
    return io.Clip.Input("clip", optional=True, tooltip="The model's text encoder: the node encodes the empty "
                         "prompt u with it (and checks a wired empty against it). Neutral: not connected.")


def main_checks(node: str, mode=None, neg_scale=None, neg_start=None, neg_end=None, window_unit=None,
                neg_schedule=None) -> bool | str:
    """validate_inputs of the shared widgets: combos in their options, numbers finite and in range."""
    return first_error(check_combo(node, "mode", mode, MODES), check_combo(node, "window_unit", window_unit, UNITS),
                       check_combo(node, "neg_schedule", neg_schedule, tuple(SCHEDULES)),
                       check_finite(node, "neg_scale", neg_scale, -100.0, 100.0),
                       check_finite(node, "neg_start", neg_start, 0.0, 1.0),
                       check_finite(node, "neg_end", neg_end, 0.0, 1.0))


def check_unranged(node: str, name: str, conditioning: list | None, outside: str) -> None:
    """Refuse a ConditioningSetTimestepRange on a conditioning the pack weighs itself (u, a term): outside its range
    ComfyUI evaluates no entry (a prediction of 0), ``outside``."""
    for _, entry in conditioning or ():
        start, end = entry.get("start_percent", 0.0), entry.get("end_percent", 1.0)
        if (start, end) != (0.0, 1.0):
            raise ValueError(f"{node}: input '{name}' is set to the timestep range {start:g}–{end:g} "
                             f"(ConditioningSetTimestepRange), and outside it {outside}. Connect it without the range "
                             "and give the term that window with its own start and end (window_unit percent, the "
                             "same fractions).")


def resolve_empty(node: str, empty, clip, others: list[tuple[str, list]]) -> tuple[list | None, str]:
    """u from ``clip`` when ``empty`` is not wired; a wired ``empty`` is checked against clip's "" (or, without a
    clip, against the other prompts). Returns u and a note for the node's readout."""
    check_unranged(node, "empty", empty, "eq. 8 would read u as 0")
    if clip is not None:
        encoded = encode(clip, "")
        if empty is None:
            return encoded, ""
        if not same_conditioning(empty, encoded):
            raise ValueError(f"{node}: input 'empty' is not the empty prompt of input 'clip': it was encoded from "
                             "another text or with another CLIP. Disconnect 'empty': the node encodes it from clip.")
        return empty, ""
    for name, conditioning in others:
        if empty is not None and same_conditioning(empty, conditioning):
            raise ValueError(f"{node}: input 'empty' is the same conditioning as input '{name}': u must be the empty "
                             "prompt. Disconnect 'empty' and connect 'clip': the node encodes it.")
    return empty, "" if empty is None else "; empty is unchecked: connect clip to let the node encode and check it"


def build_guidance(node_id: str, mode: str, neg_scale: float, neg_start: float, neg_end: float,
                   window_unit: str, neg_schedule: str, empty, terms, cfg: float | None = None,
                   auto_start: float = 0.0) -> NegativeGuidance:
    """Validate a node's inputs into a NegativeGuidance; every error names the node and the input."""
    with blame(node_id, MAIN_NAMES):
        guidance = NegativeGuidance(
            node_id=node_id,
            neg_scale=None if mode == "standard" else neg_scale,
            window=Window(neg_start, neg_end, window_unit),
            schedule=neg_schedule,
            empty=empty,
            extras=tuple(t for t in terms or () if isinstance(t, ExtraTerm)),
            attention=tuple(t for t in terms or () if isinstance(t, AttentionNegative)),
            auto_start=auto_start,
        )
        if cfg is not None:
            guidance.terms(cfg)
        # c_u = 1 − cfg + neg_scale: known with the guider's cfg; at the KSampler's cfg, any cfg may need u
        # (standard mode cancels u at any cfg: probe one ≠ 1). Until auto_start's gate opens the negative is off.
        probe = guidance.terms(2.0 if cfg is None else cfg)
        needed = (needs_empty(probe) or (cfg is None and mode == "independent")
                  or (auto_start > 0 and probe[1].scale != 0.0))
        if empty is None and needed:
            raise InvalidInput("empty", "is needed: eq. 8 evaluates u, the empty prompt, at the steps where the "
                                        "negative is off (its window, a ramp, an extra term or auto_start's gate). "
                                        "Connect 'clip' (the node encodes it), or use mode standard with an "
                                        "always-on negative, no extra terms and auto_start 0.")
    return guidance


def guidance_conditionings(guidance: NegativeGuidance) -> list[tuple[str, list]]:
    """(input name, CONDITIONING) of u and every extra term (eq. 8 and attention-space)."""
    empty = [("empty", guidance.empty)] if guidance.empty is not None else []
    return empty + [("terms", term.conditioning) for term in (*guidance.extras, *guidance.attention)]


def check_widths(node_id: str, model, conditionings: list[tuple[str, list]]) -> None:
    """Every conditioning must fit the model's context width (or the first one's, when the model has none)."""
    width = model.model.model_config.unet_config.get("context_dim")
    source = "the model"
    if width is None and conditionings:
        width, source = context_width(conditionings[0][1]), f"'{conditionings[0][0]}'"
    for name, conditioning in conditionings:
        check_width(node_id, name, conditioning, width, source)


def cost_text(guidance: NegativeGuidance, cfg: float | None = None) -> str:
    """Conditionings per model call at ``cfg`` (the guider's), or over every cfg the KSampler may use (c_u = 0 at
    one cfg only, so two probes give the range); each run logs its exact per-step plan and model-call count.

    web/js/negative_guidance.js ``evaluationsText`` computes the same text in the browser from the widgets (a cached
    node sends no ui message); tests/browser/test_ui.py checks that the two agree."""
    ranges = [evaluation_range(guidance.terms(c)) for c in ((cfg,) if cfg is not None else (2.0, 3.0))]
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    count = f"{low}" if low == high else f"{low}–{high}"
    where = "" if cfg is not None else " at the KSampler's cfg"
    if cfg is None and guidance.neg_scale is None:  # standard mode: at cfg 1 the main negative is off
        one = evaluation_range(guidance.terms(1.0))
        where += f" ({one[0]}{'' if one[0] == one[1] else f'–{one[1]}'} at cfg 1)"
    text = (f"{count} conditionings per model call{where}, in one batch (stock CFG: 2; DualCFGGuider, "
            "PerpNegGuider: 3); samplers such as heun make 2 model calls per step")
    if guidance.attention:
        low, high = attention_range(guidance.attention_terms())
        text += (f". Attention-space negatives: {low if low == high else f'{low}–{high}'} per model call, "
                 "computed inside its attention layers: no extra model evaluation (at cfg 1 with the main negative "
                 "off, 1 model evaluation per step)")
    return text


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
                clip_input(),
                auto_start_input(),
            ],
            outputs=[io.Guider.Output(tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    def validate_inputs(cls, cfg=None, mode=None, neg_scale=None, neg_start=None, neg_end=None, window_unit=None,
                        neg_schedule=None, auto_start=None):
        node = "NegativeGuidanceGuider"
        return first_error(check_finite(node, "cfg", cfg, 0.0, 100.0),
                           main_checks(node, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule),
                           check_finite(node, "auto_start", auto_start, 0.0, 1.0))

    @classmethod
    def execute(cls, model, positive, negative, mode, cfg, neg_scale, neg_start, neg_end, window_unit,
                neg_schedule, empty=None, terms=None, clip=None, auto_start=0.0) -> io.NodeOutput:
        node = "NegativeGuidanceGuider"
        empty, note = resolve_empty(node, empty, clip, [("positive", positive), ("negative", negative)])
        guidance = build_guidance(node, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule, empty,
                                  terms, cfg, auto_start)
        check_widths(node, model, [("positive", positive), ("negative", negative), *guidance_conditionings(guidance)])
        guider = comfy.samplers.CFGGuider(patch_model(model, guidance))
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg)
        return io.NodeOutput(guider, ui=ui.PreviewText(cost_text(guidance, cfg) + note))


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
                clip_input(),
                auto_start_input(),
            ],
            outputs=[io.Model.Output(tooltip="The patched model, for KSampler or CFGGuider. CFG patches such as "
                                            "RescaleCFG, CFGZeroStar, APG and PAG go after it.")],
        )

    @classmethod
    def validate_inputs(cls, mode=None, neg_scale=None, neg_start=None, neg_end=None, window_unit=None,
                        neg_schedule=None, auto_start=None):
        node = "NegativeGuidanceCFG"
        return first_error(main_checks(node, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule),
                           check_finite(node, "auto_start", auto_start, 0.0, 1.0))

    @classmethod
    def execute(cls, model, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule, empty=None,
                terms=None, clip=None, auto_start=0.0) -> io.NodeOutput:
        node = "NegativeGuidanceCFG"
        empty, note = resolve_empty(node, empty, clip, [])
        guidance = build_guidance(node, mode, neg_scale, neg_start, neg_end, window_unit, neg_schedule, empty, terms,
                                  auto_start=auto_start)
        check_widths(node, model, guidance_conditionings(guidance))
        return io.NodeOutput(patch_model(model, guidance), ui=ui.PreviewText(cost_text(guidance) + note))


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
            outputs=[Terms.Output(display_name="terms", tooltip="This term and the earlier ones: wire into a "
                                  "NegativeGuidance node's terms, or into another NegativeTerm.")],
        )

    @classmethod
    def validate_inputs(cls, weight=None, start=None, end=None, window_unit=None, schedule=None):
        node = "NegativeTerm"
        return first_error(check_finite(node, "weight", weight, -100.0, 100.0),
                           check_finite(node, "start", start, 0.0, 1.0), check_finite(node, "end", end, 0.0, 1.0),
                           check_combo(node, "window_unit", window_unit, UNITS),
                           check_combo(node, "schedule", schedule, tuple(SCHEDULES)))

    @classmethod
    def execute(cls, conditioning, weight, start, end, window_unit, schedule, terms=None) -> io.NodeOutput:
        check_unranged("NegativeTerm", "conditioning", conditioning, "eq. 8 would read the term's prediction as 0")
        with blame("NegativeTerm", TERM_NAMES):
            term = ExtraTerm(conditioning, weight, Window(start, end, window_unit), schedule)
            term.guidance_term(0)
        return io.NodeOutput((*(terms or ()), term))


class AttentionNegativeTerm(io.ComfyNode):
    """A negative that acts in attention space (NAG), so it works at cfg 1 without an extra model evaluation."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AttentionNegativeTerm",
            display_name="Attention-Space Negative Term (NAG)",
            category=CATEGORY,
            description="A negative prompt applied inside every cross- or joint-attention layer (Normalized "
                        "Attention Guidance, Chen et al. 2025, arXiv 2505.21179): Z̃ = Z⁺ + Σ φᵢ·(Z⁺ − Z⁻ᵢ), capped "
                        "at τ·‖Z⁺‖₁ per token, blended with α. It works at cfg 1 (Flux dev, distilled models) with "
                        "no extra model evaluation, inside its own window. Chain several (they sum before one "
                        "normalisation) and mix with NegativeTerm, into NegativeGuidanceCFG or "
                        "NegativeGuidanceGuider.",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="c⁻: the negative prompt, encoded with the model's own "
                                      "CLIP (CLIPTextEncode)."),
                io.Float.Input("scale", default=4.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="φ: how hard the negative pushes away in attention space. 0 = off (neutral, "
                                       "never computed). The peers' nag_scale s (core NAGuidance, KJNodes, "
                                       "ComfyUI-NAG: z⁺·s − z⁻·(s − 1)) is φ + 1: nag_scale 5 is φ = 4."),
                io.Float.Input("tau", default=2.5, min=1.0, max=100.0, step=0.1, round=0.01,
                               tooltip="τ: the most the guided output's L1 norm may grow over the positive's, per "
                                       "token (the peers' nag_tau). 1 = no growth allowed; 2.5 is the peers' "
                                       "default."),
                io.Float.Input("alpha", default=0.25, min=0.0, max=1.0, step=0.01, round=0.001,
                               tooltip="α: the blend of the normalised output with the positive's own (the peers' "
                                       "nag_alpha). 0 = no effect (neutral); 0.25 is the peers' default."),
                *window_inputs("", "this negative"),
                Terms.Input("terms", optional=True, tooltip="Terms from earlier NegativeTerm or "
                            "AttentionNegativeTerm nodes."),
                io.Combo.Input("stream", options=list(STREAMS), default=ALL, optional=True,
                               tooltip="Which text stream the negative guides. all (neutral): every one. LTX-2 "
                                       "reads its prompt twice, for the video and for the audio: video or audio "
                                       "guides that one alone (chain one term per stream, each with its own "
                                       "window). Other models have one stream: all and video act the same."),
            ],
            outputs=[Terms.Output(display_name="terms", tooltip="This term and the earlier ones: wire into a "
                                  "NegativeGuidance node's terms, or into another term node.")],
        )

    @classmethod
    def validate_inputs(cls, scale=None, tau=None, alpha=None, start=None, end=None, window_unit=None,
                        schedule=None, stream=None):
        node = "AttentionNegativeTerm"
        return first_error(check_finite(node, "scale", scale, 0.0, 100.0), check_finite(node, "tau", tau, 1.0, 100.0),
                           check_finite(node, "alpha", alpha, 0.0, 1.0),
                           check_finite(node, "start", start, 0.0, 1.0), check_finite(node, "end", end, 0.0, 1.0),
                           check_combo(node, "window_unit", window_unit, UNITS),
                           check_combo(node, "schedule", schedule, tuple(SCHEDULES)),
                           check_combo(node, "stream", stream, STREAMS))

    @classmethod
    def execute(cls, conditioning, scale, tau, alpha, start, end, window_unit, schedule, terms=None,
                stream=ALL) -> io.NodeOutput:
        node = "AttentionNegativeTerm"
        if len(conditioning) != 1:
            raise ValueError(f"{node}: input 'conditioning' holds {len(conditioning)} prompts (ConditioningCombine "
                             "or areas); an attention-space negative takes one. Chain one AttentionNegativeTerm per "
                             "prompt instead: they sum.")
        check_unranged(node, "conditioning", conditioning, "the negative would still act: attention-space negatives "
                                                          "take their steps from their own window")
        with blame(node, ATTENTION_NAMES):
            term = AttentionNegative(conditioning, scale, tau, alpha, Window(start, end, window_unit), schedule,
                                     stream)
            term.attention_term(0)
        return io.NodeOutput((*(terms or ()), term))
