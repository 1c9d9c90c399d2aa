"""Eq. 8 inside ComfyUI's own CFG: one batched model call per step, every cfg hook left working.

The patch folds eq. 8 into the two slots ComfyUI's ``sampling_function`` already has. The batch function
evaluates only the conditionings the planner needs, in one ``calc_cond_batch``, and returns (p, ū). Here ū is
the effective negative with ū + s⁺(p − ū) = eq. 8. ComfyUI itself then runs ``sampler_pre_cfg_function``,
``sampler_cfg_function`` and ``sampler_post_cfg_function`` with its usual arguments, ``cond_scale`` included.
So RescaleCFG, CFGZeroStar, APG and PAG see eq. 8 as ordinary CFG, and nothing needs replaying by hand.

Two wrappers carry what the batch function cannot see: OUTER_SAMPLE adds u and the extra terms to the guider's
conds (so ComfyUI processes them like any cond) and checks everything before the first step; SAMPLER_SAMPLE
builds, once per run, the context every call reads: the terms at the guider's cfg, the processed conds and the
sampler's sigma schedule.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import comfy.patcher_extension
import comfy.sampler_helpers
import comfy.samplers
import node_helpers

from ..guidance import (
    EMPTY,
    GuidanceTerm,
    Window,
    effective_uncond,
    eq8_terms,
    guided,
    negative_effects,
    own_step,
    plan_call,
    standard_neg_scale,
)

KEY = "x-negative-guidance"
RUN_CONTEXT = f"{KEY}.run"
EFFECTS = f"{KEY}.effects"  # transformer_options key: an AttentionStore that records where each negative acts
SLOTS = f"{KEY}.slots"  # transformer_options key: the planner key of each calc_cond_batch slot, for attn2 patches
WRAPPERS = comfy.patcher_extension.WrappersMP

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtraTerm:
    """One NegativeTerm: a conditioning pushed away with strength ``weight`` (< 0 pulls toward it)."""

    conditioning: list
    weight: float
    window: Window
    schedule: str

    def guidance_term(self, index: int) -> GuidanceTerm:
        return GuidanceTerm(term_key(index), -self.weight, self.window, self.schedule)


@dataclass(frozen=True)
class NegativeGuidance:
    """A node's settings: the main negative's s⁻ (None: standard mode, s⁻ = cfg − 1), window, u and extras."""

    node_id: str
    neg_scale: float | None
    window: Window
    schedule: str
    empty: list | None
    extras: tuple[ExtraTerm, ...] = field(default=())

    def __post_init__(self):
        self.terms(cfg=1.0)  # validates neg_scale, the window and the schedule (cfg is checked where it is known)

    def terms(self, cfg: float) -> list[GuidanceTerm]:
        """The eq. 8 terms for a sampler running at cfg = s⁺."""
        s_neg = standard_neg_scale(cfg) if self.neg_scale is None else self.neg_scale
        extra = [term.guidance_term(i) for i, term in enumerate(self.extras)]
        return eq8_terms(cfg, s_neg, self.window, self.schedule) + extra

    def extra_conditionings(self) -> dict[str, list]:
        """The conditionings this patch adds to the guider, by guider key, tagged with their prompt_type."""
        conds = {term_key(i): tag(term.conditioning, term.weight > 0) for i, term in enumerate(self.extras)}
        if self.empty is not None:
            conds[guider_key(EMPTY)] = tag(self.empty, negative=True)
        return conds


@dataclass(frozen=True)
class RunContext:
    """What the batch function needs from the guider, fixed for one sampling run."""

    terms: list[GuidanceTerm]
    conds: dict[str, list]
    sample_sigmas: list[float]
    to_sigma: Callable[[float], float]


def term_key(index: int) -> str:
    """The key of the index-th NegativeTerm, in the planner and in guider.conds."""
    return f"{KEY}.term{index}"


def tag(conditioning: list, negative: bool) -> list:
    """Mark a conditioning as a negative or positive prompt, as core guiders do (read by SDXL's refiner)."""
    return node_helpers.conditioning_set_values(conditioning, {"prompt_type": "negative" if negative else "positive"})


def guider_key(planner_key: str) -> str:
    """The guider.conds key of a planner key: u gets a namespaced key, the rest are their own keys."""
    return f"{KEY}.empty" if planner_key == EMPTY else planner_key


def context_width(conditioning: list) -> int:
    """The feature width of a CONDITIONING's cross-attention context (768 SD1, 1024 SD2, 2048 SDXL)."""
    return conditioning[0][0].shape[-1]


def check_width(node_id: str, input_name: str, conditioning: list, width: int, source: str) -> None:
    """Refuse a conditioning encoded for another model family, before sampling starts."""
    got = context_width(conditioning)
    if got != width:
        raise ValueError(
            f"{node_id}: input '{input_name}' has context width {got}, but {source} has {width}: it was encoded "
            "by the CLIP of another model family. Encode it with the same CLIP as the positive prompt."
        )


def patch_model(model, guidance: NegativeGuidance):
    """A clone of ``model`` whose CFG computes eq. 8; the incoming model is left untouched."""
    if model.wrappers.get(WRAPPERS.OUTER_SAMPLE, {}).get(KEY):
        raise ValueError(
            f"{guidance.node_id}: input 'model' already carries negative guidance. "
            "Chain extra negatives with NegativeTerm instead of stacking a second patch."
        )
    patched = model.clone()
    batch = make_batch_function(patched.model_options.get("sampler_calc_cond_batch_function"))
    patched.set_model_sampler_calc_cond_batch_function(batch)
    patched.model_options["disable_cfg1_optimization"] = True  # the planner decides what to skip
    patched.add_wrapper_with_key(WRAPPERS.OUTER_SAMPLE, KEY, make_outer_sample(guidance, batch))
    patched.add_wrapper_with_key(WRAPPERS.SAMPLER_SAMPLE, KEY, make_sampler_sample(guidance))
    return patched


def make_batch_function(previous):
    """``sampler_calc_cond_batch_function``: evaluate the planned conds in one batch, return (p, ū)."""

    def batch(args):
        ctx: RunContext = args["model_options"][RUN_CONTEXT]
        conds = {"positive": args["conds"][0], "negative": args["conds"][1], **ctx.conds}
        coefficients = plan_call(ctx.terms, float(args["sigma"][0]), ctx.sample_sigmas, ctx.to_sigma)
        keys = list(coefficients)
        options = args["model_options"]
        options = {**options, "transformer_options": {**options.get("transformer_options", {}), SLOTS: keys}}
        batch_args = {**args, "conds": [conds[guider_key(k)] for k in keys], "model_options": options}
        if previous is None:
            outputs = comfy.samplers.calc_cond_batch(
                args["model"], batch_args["conds"], args["input"], args["sigma"], options
            )
        else:
            outputs = previous(batch_args)
        preds = dict(zip(keys, outputs, strict=True))
        record_effects(options["transformer_options"].get(EFFECTS), preds, coefficients, args["sigma"], ctx)
        s_pos = coefficients.get("positive", 0.0)
        if s_pos == 0.0 or math.isclose(s_pos, 1.0):  # ū is undefined at s⁺ = 1; a pair (x̂, x̂) gives x̂ at any s
            out = guided(preds, coefficients)
            return [out, out]
        return [preds["positive"], effective_uncond(preds, coefficients, "positive")]

    return batch


def record_effects(store, preds, coefficients, sigma: torch.Tensor, ctx: RunContext) -> None:
    """With an attention capture on the model, store |w⁻·(n − u)| of each negative at each step's own σ_i."""
    step = None if store is None else own_step(ctx.sample_sigmas, float(sigma[0]))
    if step is not None:
        for key, effect in negative_effects(preds, coefficients).items():
            store.add_effect(step, float(sigma[0]), key.removeprefix(f"{KEY}."), effect)


def percent_to_sigma(model_sampling, dtype: torch.dtype):
    """ComfyUI's percent → sigma, rounded to the sigma dtype as ``get_area_and_mult`` compares it; memoised."""
    return functools.cache(lambda p: torch.tensor(model_sampling.percent_to_sigma(p), dtype=dtype).item())


def make_sampler_sample(guidance: NegativeGuidance):
    """SAMPLER_SAMPLE wrapper: hand every model call of this run the guider's cfg, processed conds and schedule."""

    def sampler_sample(executor, guider, sigmas, extra_args, *args, **kwargs):
        ctx = RunContext(
            terms=guidance.terms(guider.cfg),
            conds={key: guider.conds[key] for key in guidance.extra_conditionings()},
            sample_sigmas=sigmas.tolist(),
            to_sigma=percent_to_sigma(guider.inner_model.model_sampling, sigmas.dtype),
        )
        model_options = {**extra_args["model_options"], RUN_CONTEXT: ctx}
        return executor(guider, sigmas, {**extra_args, "model_options": model_options}, *args, **kwargs)

    return sampler_sample


def make_outer_sample(guidance: NegativeGuidance, batch):
    """OUTER_SAMPLE wrapper: check the run, add u and the extra terms to the guider, log the cost."""

    def outer_sample(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        check_run(guidance, guider, batch)
        for key, conditioning in guidance.extra_conditionings().items():
            guider.conds[key] = comfy.sampler_helpers.convert_cond(conditioning)
        schedule = sigmas.tolist()
        to_sigma = percent_to_sigma(guider.model_patcher.get_model_object("model_sampling"), sigmas.dtype)
        terms = guidance.terms(guider.cfg)
        log.info("%s: %s", guidance.node_id, cost_summary(terms, schedule, to_sigma))
        for term in terms:
            if term.scale != 0.0 and not any(term.window.is_active(s, schedule, to_sigma) for s in schedule[:-1]):
                log.warning("%s: the window %s of %s holds no step of this %d-step run, so it is never applied",
                            guidance.node_id, term.window, describe(term.key), len(schedule) - 1)
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)

    return outer_sample


def check_run(guidance: NegativeGuidance, guider, batch) -> None:
    """Everything that would break this run, raised before its first step."""
    node = guidance.node_id
    if type(guider).predict_noise is not comfy.samplers.CFGGuider.predict_noise:
        raise ValueError(
            f"{node}: the patched model went to {type(guider).__name__}, which computes its own guidance and "
            "would bypass this patch. Use KSampler, CFGGuider or NegativeGuidanceGuider."
        )
    if guider.model_options.get("sampler_calc_cond_batch_function") is not batch:
        raise ValueError(
            f"{node}: a node applied after it replaced sampler_calc_cond_batch_function. "
            f"Apply {node} last in the model chain."
        )
    width = guider.conds["positive"][0]["cross_attn"].shape[-1]
    for key, conditioning in guidance.extra_conditionings().items():
        name = "empty" if key == guider_key(EMPTY) else "terms"
        check_width(node, name, conditioning, width, "the positive prompt")


def describe(key: str) -> str:
    """A planner key as the user knows it: 'the negative' or 'NegativeTerm #i'."""
    return f"NegativeTerm #{key.removeprefix(f'{KEY}.term')}" if key.startswith(KEY) else f"the {key}"


def cost_summary(terms: list[GuidanceTerm], schedule: list[float], to_sigma) -> str:
    """'model evaluations per step: 2 (steps 0–4), 3 (steps 5–19); 55 in all': the plan at each step's σ_i."""
    counts = [len(plan_call(terms, schedule[i], schedule, to_sigma)) for i in range(len(schedule) - 1)]
    runs, start = [], 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            runs.append(f"{counts[start]} (steps {start}–{i - 1})")
            start = i
    return f"model evaluations per step: {', '.join(runs)}; {sum(counts)} in all"
