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
from dataclasses import dataclass, field, replace

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
    step_index,
)
from ..guidance.online import LayoutWatch
from .contract import EFFECTS, EMPTY_KEY, GUIDANCE, KEY, term_key, term_name
from .run_checks import check_run

RUN_CONTEXT = f"{KEY}.run"
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
    auto_start: float = 0.0  # ε of the online gate (guidance/online.py); 0: the window as set

    def __post_init__(self):
        self.terms(cfg=1.0)  # validates neg_scale, the window and the schedule (cfg is checked where it is known)

    def __deepcopy__(self, memo):  # immutable: ModelPatcher.clone() need not copy its conditionings
        return self

    def terms(self, cfg: float) -> list[GuidanceTerm]:
        """The eq. 8 terms for a sampler running at cfg = s⁺."""
        s_neg = standard_neg_scale(cfg) if self.neg_scale is None else self.neg_scale
        extra = [term.guidance_term(i) for i, term in enumerate(self.extras)]
        return eq8_terms(cfg, s_neg, self.window, self.schedule) + extra

    def negative_keys(self, cfg: float) -> list[str]:
        """The planner keys of the terms that push away (negative scale) at this cfg."""
        return [term.key for term in self.terms(cfg) if term.scale < 0]

    def is_stock_negative(self, cfg: float) -> bool:
        """Whether every call computes exactly n + cfg·(p − n), so ū is the sampler's own negative at every step."""
        main = self.terms(cfg)[1]
        return (not self.extras and main.window.is_full and main.schedule == "constant"
                and main.scale == -standard_neg_scale(cfg))

    def negative_off(self, guider, sample_sigmas: list[float]) -> str | None:
        """Why the main negative is off at every step of this run, or None when some step evaluates it."""
        main = self.terms(guider.cfg)[1]
        if main.scale == 0.0:
            return "its neg_scale is 0 (in standard mode: cfg is 1)"
        to_sigma = percent_to_sigma(guider.model_patcher.get_model_object("model_sampling"), torch.float32)
        if not any(main.window.is_active(s, sample_sigmas, to_sigma) for s in sample_sigmas[:-1]):
            return (f"its window neg_start {main.window.start}–neg_end {main.window.end} ({main.window.unit}) holds no "
                    f"step of this {len(sample_sigmas) - 1}-step run")
        return None

    def extra_conditionings(self) -> dict[str, list]:
        """The conditionings this patch adds to the guider, by guider key, tagged with their prompt_type."""
        conds = {term_key(i): tag(term.conditioning, term.weight > 0) for i, term in enumerate(self.extras)}
        if self.empty is not None:
            conds[guider_key(EMPTY)] = tag(self.empty, negative=True)
        return conds


@dataclass(frozen=True)
class RunContext:
    """What the batch function needs from the guider, fixed for one sampling run; its running count of [model calls,
    conditionings evaluated]; and the online gate's watch, when the main negative waits for the layout to settle."""

    terms: list[GuidanceTerm]
    conds: dict[str, list]
    sample_sigmas: list[float]
    to_sigma: Callable[[float], float]
    watch: LayoutWatch | None = None
    calls: list[int] = field(default_factory=lambda: [0, 0])

    def count(self, conditionings: int) -> None:
        self.calls[0] += 1
        self.calls[1] += conditionings

    def terms_at(self, step: int) -> list[GuidanceTerm]:
        """The terms of a call at ``step``: under the online gate, the main negative is off until its watch opens."""
        if self.watch is None or self.watch.is_open(step):
            return self.terms
        return [self.terms[0], replace(self.terms[1], scale=0.0), *self.terms[2:]]


def tag(conditioning: list, negative: bool) -> list:
    """Mark a conditioning as a negative or positive prompt, as core guiders do (read by SDXL's refiner)."""
    return node_helpers.conditioning_set_values(conditioning, {"prompt_type": "negative" if negative else "positive"})


def guider_key(planner_key: str) -> str:
    """The guider.conds key of a planner key: u gets a namespaced key, the rest are their own keys."""
    return EMPTY_KEY if planner_key == EMPTY else planner_key


def patch_model(model, guidance: NegativeGuidance):
    """A clone of ``model`` whose CFG computes eq. 8; the incoming model is left untouched."""
    node = guidance.node_id
    if model.model_options.get(GUIDANCE) is not None:
        raise ValueError(f"{node}: input 'model' already carries negative guidance. Chain extra negatives with "
                         "NegativeTerm instead of stacking a second patch.")
    earlier = model.model_options.get("sampler_calc_cond_batch_function")
    if earlier is not None:
        raise ValueError(f"{node}: input 'model' carries {hook_name(earlier)}, a sampler_calc_cond_batch_function "
                         "from an earlier node. It expects ComfyUI's [positive, negative] batch, where this patch "
                         "batches positive, negative, empty and the terms, so the two cannot be combined: remove "
                         "that node, or apply its effect another way.")
    patched = model.clone()
    batch = make_batch_function()
    patched.set_model_sampler_calc_cond_batch_function(batch)
    patched.model_options["disable_cfg1_optimization"] = True  # the planner decides what to skip
    patched.model_options[GUIDANCE] = guidance
    patched.add_wrapper_with_key(WRAPPERS.OUTER_SAMPLE, KEY, make_outer_sample(guidance, batch))
    patched.add_wrapper_with_key(WRAPPERS.SAMPLER_SAMPLE, KEY, make_sampler_sample(guidance))
    return patched


def hook_name(fn) -> str:
    """A hook as a user can look it up: module.qualname."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def make_batch_function():
    """``sampler_calc_cond_batch_function``: evaluate the planned conds in one batch, return (p, ū)."""

    def batch(args):
        ctx: RunContext = args["model_options"][RUN_CONTEXT]
        conds = {"positive": args["conds"][0], "negative": args["conds"][1], **ctx.conds}
        sigma = float(args["sigma"][0])
        step = step_index(ctx.sample_sigmas, sigma)
        coefficients = plan_call(ctx.terms_at(step), sigma, ctx.sample_sigmas, ctx.to_sigma)
        keys = list(coefficients)
        ctx.count(len(keys))
        outputs = comfy.samplers.calc_cond_batch(args["model"], [conds[guider_key(k)] for k in keys], args["input"],
                                                 args["sigma"], args["model_options"])
        preds = dict(zip(keys, outputs, strict=True))
        if ctx.watch is not None and own_step(ctx.sample_sigmas, sigma) is not None and step == len(ctx.watch.changes):
            ctx.watch.update(step, preds["positive"])  # the first call at each step's own σ_i
        recorder = args["model_options"].get("transformer_options", {}).get(EFFECTS)
        record_effects(recorder, preds, coefficients, args["sigma"], ctx)
        s_pos = coefficients.get("positive", 0.0)
        if s_pos == 0.0 or math.isclose(s_pos, 1.0):  # ū is undefined at s⁺ = 1; a pair (x̂, x̂) gives x̂ at any s
            out = guided(preds, coefficients)
            return [out, out]
        return [preds["positive"], effective_uncond(preds, coefficients, "positive")]

    return batch


def record_effects(recorder, preds, coefficients, sigma: torch.Tensor, ctx: RunContext) -> None:
    """With an attention capture on the model, hand it |w⁻·(n − u)| of each negative at each step's own σ_i."""
    step = None if recorder is None else own_step(ctx.sample_sigmas, float(sigma[0]))
    if step is not None:
        for key, effect in negative_effects(preds, coefficients).items():
            recorder.add_effect(step, term_name(key), effect)


def percent_to_sigma(model_sampling, dtype: torch.dtype):
    """ComfyUI's percent → sigma, rounded to the sigma dtype as ``get_area_and_mult`` compares it; memoised."""
    return functools.cache(lambda p: torch.tensor(model_sampling.percent_to_sigma(p), dtype=dtype).item())


def make_sampler_sample(guidance: NegativeGuidance):
    """SAMPLER_SAMPLE wrapper: hand every model call of this run the guider's cfg, processed conds and schedule;
    log what the run evaluated."""

    def sampler_sample(executor, guider, sigmas, extra_args, *args, **kwargs):
        schedule = sigmas.tolist()
        to_sigma = percent_to_sigma(guider.inner_model.model_sampling, sigmas.dtype)
        terms = guidance.terms(guider.cfg)
        watch = None
        if guidance.auto_start > 0:
            watch = LayoutWatch(guidance.auto_start, terms[1].window.step_range(schedule, to_sigma).start)
        ctx = RunContext(terms, {key: guider.conds[key] for key in guidance.extra_conditionings()}, schedule, to_sigma,
                         watch)
        model_options = {**extra_args["model_options"], RUN_CONTEXT: ctx}
        samples = executor(guider, sigmas, {**extra_args, "model_options": model_options}, *args, **kwargs)
        log.info("%s: this run made %d model calls, which evaluated %d conditionings", guidance.node_id,
                 ctx.calls[0], ctx.calls[1])
        if watch is not None:
            log.info("%s: %s", guidance.node_id, watch_summary(watch, len(schedule) - 1))
        return samples

    return sampler_sample


def make_outer_sample(guidance: NegativeGuidance, batch):
    """OUTER_SAMPLE wrapper: check the run, add u and the extra terms to the guider, log the plan."""

    def outer_sample(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        check_run(guidance, guider, batch)
        for key, conditioning in guidance.extra_conditionings().items():
            guider.conds[key] = comfy.sampler_helpers.convert_cond(conditioning)
        carry_guidance(guider.conds)
        schedule = sigmas.tolist()
        to_sigma = percent_to_sigma(guider.model_patcher.get_model_object("model_sampling"), sigmas.dtype)
        terms = guidance.terms(guider.cfg)
        log.info("%s: %s", guidance.node_id, plan_summary(terms, schedule, to_sigma))
        for term in terms:
            if term.scale != 0.0 and not any(term.window.is_active(s, schedule, to_sigma) for s in schedule[:-1]):
                log.warning("%s: the window %s of %s holds no step of this %d-step run, so it is never applied",
                            guidance.node_id, term.window, describe(term.key), len(schedule) - 1)
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)

    return outer_sample


def carry_guidance(conds: dict) -> None:
    """u takes the positive's embedded guidance (Flux dev's FluxGuidance value) when it has none of its own: the
    empty prompt the node encodes would otherwise run at the model's default guidance."""
    value = next((entry["guidance"] for entry in conds["positive"] if "guidance" in entry), None)
    if value is not None:
        for entry in conds.get(EMPTY_KEY, []):
            entry.setdefault("guidance", value)


def watch_summary(watch: LayoutWatch, steps: int) -> str:
    """What the online gate chose in a run of ``steps`` steps."""
    if watch.opened_at is None or watch.opened_at >= steps:
        return f"the layout never settled below auto_start {watch.epsilon:g}: the negative never ran"
    return (f"the layout settled at step {watch.opened_at - 1} (change {watch.changes[watch.opened_at - 1]:.4f} < "
            f"{watch.epsilon:g}): the negative ran from step {watch.opened_at}")


def describe(key: str) -> str:
    """A planner key as the user knows it: 'the negative' or 'NegativeTerm #i'."""
    name = term_name(key)
    return f"NegativeTerm #{name.removeprefix('term')}" if name.startswith("term") else f"the {key}"


def plan_summary(terms: list[GuidanceTerm], schedule: list[float], to_sigma) -> str:
    """'conditionings per model call: 2 (steps 0–4), 3 (steps 5–19)': the plan at each step's own σ_i."""
    counts = [len(plan_call(terms, schedule[i], schedule, to_sigma)) for i in range(len(schedule) - 1)]
    runs, start = [], 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            runs.append(f"{counts[start]} (steps {start}–{i - 1})")
            start = i
    return f"conditionings per model call: {', '.join(runs)}"
