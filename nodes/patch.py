"""Eq. 8 inside ComfyUI's own CFG: one batched model call per step, every cfg hook left working.

The patch folds eq. 8 into the two slots ComfyUI's ``sampling_function`` already has. The batch function
evaluates only the conditionings the planner needs, in one ``calc_cond_batch``, and returns (p, ū). Here ū is
the effective negative with ū + s⁺(p − ū) = eq. 8. ComfyUI itself then runs ``sampler_pre_cfg_function``,
``sampler_cfg_function`` and ``sampler_post_cfg_function`` with its usual arguments, ``cond_scale`` included.
So RescaleCFG, CFGZeroStar, APG and PAG see eq. 8 as ordinary CFG, and nothing needs replaying by hand.

Attention-space negatives (AttentionNegativeTerm, nodes/nag.py) add no conditioning: the batch function plans their
φᵢ(t) per call by their windows and schedules and hands the active ones to the family's attention hooks through
transformer_options (contract ``NAG``), so at cfg 1 a run with them still makes one model evaluation per step.

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
    AttentionTerm,
    GuidanceTerm,
    Window,
    effective_uncond,
    eq8_terms,
    guided,
    negative_effects,
    own_step,
    plan_attention,
    plan_call,
    standard_neg_scale,
    step_index,
)
from ..guidance.online import LayoutWatch
from .compat import first_latent, first_shape, latent_shapes, own_steps_sampler
from .contract import ATTENTION_EFFECT, EMPTY_KEY, GUIDANCE, KEY, NAG, RUN_CONTEXT, term_key, term_name
from .nag import AttentionNegative, EffectSum, NagCall, Negative, stray_stream
from .run_checks import check_run
from .site import check, family_refusal, hook_name, join, site_of

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
    attention: tuple[AttentionNegative, ...] = field(default=())
    auto_start: float = 0.0  # ε of the online gate (guidance/online.py); 0: the window as set

    def __post_init__(self):
        self.terms(cfg=1.0)  # validates neg_scale, the window and the schedule (cfg is checked where it is known)
        self.attention_terms()

    def attention_terms(self) -> list[AttentionTerm]:
        """The attention-space negatives, in chain order."""
        return [term.attention_term(i) for i, term in enumerate(self.attention)]

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

    def negative_off(self, guider, sample_sigmas: list[float], attention: int | None = None) -> str | None:
        """Why the negative is off at every step of this run, or None when some step evaluates it: the main negative,
        or the ``attention``-th AttentionNegativeTerm when that term carries it."""
        if attention is None:
            term, names = self.terms(guider.cfg)[1], ("neg_start", "neg_end")
            zero = "its neg_scale is 0 (in standard mode: cfg is 1)"
        else:
            term, names = self.attention_terms()[attention], ("start", "end")
            zero = "the AttentionNegativeTerm that carries it has scale 0"
        if term.scale == 0.0:
            return zero
        to_sigma = percent_to_sigma(guider.model_patcher.get_model_object("model_sampling"), torch.float32)
        if not any(term.window.is_active(s, sample_sigmas, to_sigma) for s in sample_sigmas[:-1]):
            owner = "its window" if attention is None else "the window of the AttentionNegativeTerm that carries it,"
            return (f"{owner} {names[0]} {term.window.start}–{names[1]} {term.window.end} ({term.window.unit}) holds "
                    f"no step of this {len(sample_sigmas) - 1}-step run")
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
    conditionings evaluated, attention-space negatives computed]; and the online gate's watch, when the main negative
    waits for the layout to settle.

    The terms are planned at the guider's cfg at each call (``terms_of(guider.cfg)``), so that a node that changes it
    for some steps (core CFGOverride) gets eq. 8 at that cfg there: cfg is s⁺ in both modes, and neg_scale stays s⁻
    (in standard mode s⁻ = cfg − 1 follows)."""

    terms_of: Callable[[float], list[GuidanceTerm]]
    guider: object
    conds: dict[str, list]
    sample_sigmas: list[float]
    to_sigma: Callable[[float], float]
    watch: LayoutWatch | None = None
    attention: list[AttentionTerm] = field(default_factory=list)
    contexts: list = field(default_factory=list)  # the attention terms' contexts, in chain order
    streams: list = field(default_factory=list)  # the text stream each guides (nodes/nag.py STREAMS)
    moved: dict = field(default_factory=dict)  # those contexts on the model's device and dtype (NagCall.run_cache)
    calls: list[int] = field(default_factory=lambda: [0, 0, 0])
    step_negatives: list = field(default_factory=lambda: [None, None])  # the latest batch's [σ, NagCall | None]

    def count(self, conditionings: int, attention: int) -> None:
        self.calls[0] += 1
        self.calls[1] += conditionings
        self.calls[2] += attention

    def plans_at(self, step: int) -> list[tuple[list[GuidanceTerm], list[bool] | None]]:
        """The terms of a call at ``step``, at the guider's cfg now, and the images each set applies to (None: every
        image). Under the online gate the main negative is off for each image until that image's own layout has
        settled: one set of terms, or two while the batch's gates differ."""
        terms = self.terms_of(self.guider.cfg)
        if self.watch is None:
            return [(terms, None)]
        opened = self.watch.open_images(step)
        closed = [terms[0], replace(terms[1], scale=0.0), *terms[2:]]
        if not any(opened):
            return [(closed, None)]
        if all(opened):
            return [(terms, None)]
        return [(terms, opened), (closed, [not image for image in opened])]


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
    patched = (join(model, negatives_family(node, model, guidance.attention), node, negatives=node)
               if guidance.attention else model.clone())
    batch = make_batch_function()
    patched.set_model_sampler_calc_cond_batch_function(batch)
    patched.model_options["disable_cfg1_optimization"] = True  # the planner decides what to skip
    patched.model_options[GUIDANCE] = guidance
    patched.add_wrapper_with_key(WRAPPERS.OUTER_SAMPLE, KEY, make_outer_sample(guidance, batch))
    patched.add_wrapper_with_key(WRAPPERS.SAMPLER_SAMPLE, KEY, make_sampler_sample(guidance))
    if guidance.attention:
        patched.add_wrapper_with_key(WRAPPERS.CALC_COND_BATCH, KEY, same_step_negatives)
    return patched


def same_step_negatives(executor, model, conds, x_in, timestep, model_options):
    """CALC_COND_BATCH wrapper: a model call at the σ of the latest batch, made outside it (the perturbed positive of
    PerturbedAttentionGuidance or SkipLayerGuidance, after CFG), gets that batch's attention-space negatives, so that
    the pass compares like with like. Without them, PAG at scale s multiplied the negative's effect by 1 + s. The σ
    is matched by identity: no host sync."""
    ctx = model_options.get(RUN_CONTEXT)
    options = model_options.get("transformer_options", {})
    sigma, nag = (None, None) if ctx is None else ctx.step_negatives
    if nag is not None and sigma is timestep and NAG not in options:
        nag = replace(nag, record_effect=False, layout=None, effect=EffectSum())
        model_options = {**model_options, "transformer_options": {**options, NAG: nag}}
    return executor(model, conds, x_in, timestep, model_options)


def negatives_family(node: str, model, negatives: list[AttentionNegative]):
    """The model family whose attention hooks take these attention-space negatives, or a clear error naming the model
    (or the stream it lacks)."""
    from . import compat
    from .families import UnsupportedModel, family_of

    missing = compat.problems(compat.NEGATIVES)
    if missing:
        raise ValueError(f"{node}: input 'terms' holds an AttentionNegativeTerm, which needs a hook this ComfyUI "
                         f"{compat.comfyui_version()} lacks: {missing[0]}")
    try:
        family = family_of(model)
    except UnsupportedModel as error:
        raise ValueError(f"{node}: input 'terms' holds an AttentionNegativeTerm, but {error}") from None
    if (refused := getattr(family, "NEGATIVES_REFUSED", None)) is not None:
        name = type(model.get_model_object("diffusion_model")).__name__
        raise ValueError(f"{node}: input 'terms' holds an AttentionNegativeTerm, but its diffusion model {name} "
                         f"cannot take attention-space negatives: {refused}")
    streams = set(getattr(family, "CONTEXTS", {}).values()) or {"video"}  # one stream, the picture's
    if (stray := stray_stream(negatives, streams)) is not None:
        raise ValueError(f"{node}: input 'terms' holds an AttentionNegativeTerm whose input 'stream' is '{stray}', "
                         f"but {family.NAME} has no {stray} stream (LTX-2 alone samples audio beside its video), so "
                         "it would never act. Set its stream to 'all'.")
    return family


def make_batch_function():
    """``sampler_calc_cond_batch_function``: evaluate the planned conds in one batch, return (p, ū)."""

    def batch(args):
        ctx: RunContext = args["model_options"][RUN_CONTEXT]
        conds = {"positive": args["conds"][0], "negative": args["conds"][1], **ctx.conds}
        sigma = float(args["sigma"][0])  # a host sync per call (the online gate adds its per-image changes per step)
        step = step_index(ctx.sample_sigmas, sigma)
        plans = [(plan_call(terms, sigma, ctx.sample_sigmas, ctx.to_sigma), rows) for terms, rows in ctx.plans_at(step)]
        coefficients, images = plans[0][0], [rows for _, rows in plans]  # the plans differ in the main negative only
        keys = list(dict.fromkeys(key for plan, _ in plans for key in plan))
        model_options = args["model_options"]
        site = site_of(model_options)
        recorder = None if site is None else site.recorder
        own = own_step(ctx.sample_sigmas, sigma)  # None at a sampler's intermediate call
        record_at = None if recorder is None else own
        nag = negatives_call(ctx, sigma, coefficients, conds, first_shape(args["model"], args["input"]),
                             record_at is not None)
        if nag is not None:
            options = model_options.get("transformer_options", {})
            model_options = {**model_options, "transformer_options": {**options, NAG: nag}}
        ctx.step_negatives[:] = args["sigma"], nag
        ctx.count(len(keys), 0 if nag is None else len(nag.negatives))
        outputs = comfy.samplers.calc_cond_batch(args["model"], [conds[guider_key(k)] for k in keys], args["input"],
                                                 args["sigma"], model_options)
        preds = dict(zip(keys, outputs, strict=True))
        if ctx.watch is not None and own is not None and step == len(ctx.watch.changes):
            ctx.watch.update(step, preds["positive"])  # the first call at each step's own σ_i
        if record_at is not None:  # the maps' latent: LTX-2's video, of the video and audio packed in one
            record_effects(recorder, {key: first_latent(args["model"], pred) for key, pred in preds.items()}, plans,
                           record_at, nag)
        slots = [cfg_slots(preds, plan) for plan, _ in plans]
        return [by_image([s[0] for s in slots], images), by_image([s[1] for s in slots], images)]

    return batch


def cfg_slots(preds: dict[str, torch.Tensor], coefficients: dict[str, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """(p, ū) with ū + s⁺(p − ū) = x̂, for ComfyUI's CFG slots; (x̂, x̂) at s⁺ = 0 or 1, where ū is undefined and the
    pair gives x̂ at any cfg."""
    s_pos = coefficients.get("positive", 0.0)
    if s_pos == 0.0 or math.isclose(s_pos, 1.0):
        out = guided(preds, coefficients)
        return out, out
    return preds["positive"], effective_uncond(preds, coefficients, "positive")


def by_image(values: list[torch.Tensor], images: list[list[bool] | None]) -> torch.Tensor:
    """One batch whose image b comes from the plan that holds it: values[0] where images[0][b], else values[1]."""
    if len(values) == 1:
        return values[0]
    mask = torch.tensor(images[0], device=values[0].device).view(-1, *(1,) * (values[0].ndim - 1))
    return torch.where(mask, values[0], values[1])


def negatives_call(ctx: RunContext, sigma: float, coefficients: dict[str, float], conds: dict, latent_shape,
                   record_effect: bool) -> NagCall | None:
    """The attention-space negatives active at this call, for the attention hooks; None when none is (then no hook
    does anything). NAG applies to every evaluated branch with a positive coefficient but u: the positive prompt and
    the terms that pull toward their prompt, never u nor a pushed-away (negative) branch."""
    weights = plan_attention(ctx.attention, sigma, ctx.sample_sigmas, ctx.to_sigma)
    if not weights:
        return None
    uuids = frozenset(e["uuid"] for key, c in coefficients.items() if c > 0 and key != EMPTY
                      for e in conds[guider_key(key)])
    positive = frozenset(e["uuid"] for e in conds["positive"])
    negatives = [Negative(i, weights[t.key], ctx.contexts[i], t.tau, t.alpha, ctx.streams[i])
                 for i, t in enumerate(ctx.attention) if t.key in weights]
    return NagCall(negatives, uuids, latent_shape, positive & uuids, record_effect, run_cache=ctx.moved)


def record_effects(recorder, preds, plans: list[tuple[dict, list[bool] | None]], step: int | None,
                   nag: NagCall | None) -> None:
    """With an attention capture on the model, hand it |w⁻·(n − u)| of each negative at each step's own σ_i (of each
    image under the plan that holds it; 0 where that plan leaves the negative off), and |Z − Z⁺| of the
    attention-space negatives."""
    if step is None:
        return
    effects = [negative_effects(preds, plan) for plan, _ in plans]
    for key in dict.fromkeys(key for found in effects for key in found):
        some = next(found[key] for found in effects if key in found)
        per_plan = [found.get(key, torch.zeros_like(some)) for found in effects]
        recorder.add_effect(step, term_name(key), by_image(per_plan, [rows for _, rows in plans]))
    effect = None if nag is None else nag.effect.mean()
    if effect is not None:
        recorder.add_effect(step, ATTENTION_EFFECT, effect)


def percent_to_sigma(model_sampling, dtype: torch.dtype):
    """ComfyUI's percent → sigma, rounded to the sigma dtype as ``get_area_and_mult`` compares it; memoised."""
    return functools.cache(lambda p: torch.tensor(model_sampling.percent_to_sigma(p), dtype=dtype).item())


def make_sampler_sample(guidance: NegativeGuidance):
    """SAMPLER_SAMPLE wrapper: hand every model call of this run the guider's cfg, processed conds and schedule;
    log what the run evaluated."""

    def sampler_sample(executor, guider, sigmas, extra_args, *args, **kwargs):
        schedule = sigmas.tolist()
        to_sigma = percent_to_sigma(guider.inner_model.model_sampling, sigmas.dtype)
        terms_of = functools.lru_cache(maxsize=4)(guidance.terms)  # at each call, the guider's cfg then
        window = terms_of(guider.cfg)[1].window.step_range(schedule, to_sigma)
        watch = None
        if guidance.auto_start > 0:
            watch = LayoutWatch(guidance.auto_start, window.start)
        ctx = RunContext(
            terms_of=terms_of,
            guider=guider,
            conds={key: guider.conds[key] for key in guidance.extra_conditionings()},
            sample_sigmas=schedule,
            to_sigma=to_sigma,
            watch=watch,
            attention=guidance.attention_terms(),
            contexts=negative_contexts(guidance.attention, guider),
            streams=[term.stream for term in guidance.attention],
        )
        model_options = {**extra_args["model_options"], RUN_CONTEXT: ctx}
        samples = executor(guider, sigmas, {**extra_args, "model_options": model_options}, *args, **kwargs)
        log.info("%s: %s", guidance.node_id, run_summary(ctx.calls, len(schedule) - 1))
        if watch is not None:
            log.info("%s: %s", guidance.node_id, watch_summary(watch, window))
        return samples

    return sampler_sample


def check_guided_entries(node: str, guider) -> None:
    """Refuse, before the first step, conditionings beside which the family's negatives would not be exact: those
    of the rows the negatives guide (the positive and the terms; never the CFG negative nor u)."""
    family = site_of(guider.model_options).family
    if (why := family_refusal(family, "negatives_refusal", guider, ("negative", EMPTY_KEY))) is not None:
        raise ValueError(f"{node}: input 'terms' holds an AttentionNegativeTerm, but {why}.")


def check_streams(guidance: NegativeGuidance, guider, shapes: list[tuple[int, ...]]) -> None:
    """Refuse, before the first step, an attention-space negative of a stream this run does not sample (LTX-2's
    audio, with no audio latent or an empty one): it would never act."""
    sampled = getattr(site_of(guider.model_options).family, "sampled_streams", None)
    if sampled is None:
        return
    streams = sampled(shapes)
    if (stray := stray_stream(guidance.attention, streams)) is not None:
        raise ValueError(f"{guidance.node_id}: input 'terms' holds an AttentionNegativeTerm whose input 'stream' is "
                         f"'{stray}', but this run samples no {stray} (its latents: {', '.join(map(str, shapes))}), "
                         f"so it would never act. Set its stream to '{next(iter(streams))}' or 'all', or sample a "
                         "latent of that stream (LTXVConcatAVLatent).")


def negative_contexts(negatives: list[AttentionNegative], guider) -> list:
    """Each attention-space negative's context as its family's blocks take it, once per sampling run (LTXV: cut to
    its unmasked tokens; LTX-2: through the model's text connectors; HunyuanVideo 1.5: with its ByT5 tokens)."""
    site = site_of(guider.model_options)
    context_of = getattr(site.family, "negative_context", None) if site is not None else None
    return [term.context if context_of is None else context_of(term.conditioning, guider) for term in negatives]


def make_outer_sample(guidance: NegativeGuidance, batch):
    """OUTER_SAMPLE wrapper: check the run, add u and the extra terms to the guider, log the plan."""

    def outer_sample(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        check_run(guidance, guider, batch)
        if guidance.auto_start > 0 and (own := own_steps_sampler(sampler)) is not None:
            raise ValueError(f"{guidance.node_id}: input 'auto_start': the sampler {own} picks its own steps between "
                             "the schedule's ends, so the online gate, which reads the schedule's steps, would never "
                             "open. Set auto_start to 0 and start the negative with neg_start, or use another "
                             "sampler.")
        if guidance.attention:  # a hook replaced later would attend over the negatives as if they were the prompt's
            check(guidance.node_id, guider, "its attention-space negatives would attend as part of the prompt")
        for key, conditioning in guidance.extra_conditionings().items():
            guider.conds[key] = comfy.sampler_helpers.convert_cond(conditioning)
        if guidance.attention:
            check_guided_entries(guidance.node_id, guider)
            check_streams(guidance, guider, latent_shapes(latent_image, kwargs))
        carry_guidance(guider.conds)
        schedule = sigmas.tolist()
        to_sigma = percent_to_sigma(guider.model_patcher.get_model_object("model_sampling"), sigmas.dtype)
        terms = guidance.terms(guider.cfg)
        log.info("%s: %s", guidance.node_id, plan_summary(terms, schedule, to_sigma, guidance.attention_terms()))
        for term in [*terms, *guidance.attention_terms()]:
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


def watch_summary(watch: LayoutWatch, window: range) -> str:
    """What the online gate chose, for a negative whose window holds the steps ``window``: once when every image's
    gate opened at the same step, else per image."""
    if len(set(watch.opened_at)) <= 1:
        return gate_summary(watch, window, 0)
    return "; ".join(f"image {b}: {gate_summary(watch, window, b)}" for b in range(len(watch.opened_at)))


def gate_summary(watch: LayoutWatch, window: range, image: int) -> str:
    """What the online gate chose for one image."""
    opened = watch.opened_at[image] if watch.opened_at else None
    if opened is None:
        return f"the layout never settled below auto_start {watch.epsilon:g}: the negative never ran"
    if opened >= window.stop:
        return (f"the layout settled below auto_start {watch.epsilon:g} at step {opened - 1}, so the negative would "
                f"have run from step {opened}, after the last step of its window ({window.stop - 1}): the negative "
                "never ran")
    return (f"the layout settled at step {opened - 1} (change {watch.changes[opened - 1][image]:.4f} < "
            f"{watch.epsilon:g}): the negative ran from step {opened} to step {window.stop - 1}")


def run_summary(calls: list[int], steps: int) -> str:
    """'this run made 4 model calls over 4 steps (1 model evaluation per step), which evaluated 4 conditionings
    and 4 attention-space negatives (no extra model pass)'."""
    per_step = calls[0] / steps if steps else 0.0
    rate = f"{per_step:.3g} model evaluation{'s' if per_step != 1 else ''} per step"
    text = f"this run made {calls[0]} model calls over {steps} steps ({rate}), which evaluated {calls[1]} conditionings"
    if calls[2]:
        text += f" and {calls[2]} attention-space negatives (inside those calls, no extra model pass)"
    return text


def describe(key: str) -> str:
    """A planner key as the user knows it: 'the negative', 'NegativeTerm #i' or 'AttentionNegativeTerm #i'."""
    name = term_name(key)
    if name.startswith("attention"):
        return f"AttentionNegativeTerm #{name.removeprefix('attention')}"
    return f"NegativeTerm #{name.removeprefix('term')}" if name.startswith("term") else f"the {key}"


def step_runs(counts: list[int]) -> str:
    """'2 (steps 0–4), 3 (steps 5–19)': equal counts of consecutive steps, joined."""
    runs, start = [], 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            runs.append(f"{counts[start]} (steps {start}–{i - 1})")
            start = i
    return ", ".join(runs)


def plan_summary(terms: list[GuidanceTerm], schedule: list[float], to_sigma,
                 attention: list[AttentionTerm] = ()) -> str:
    """'conditionings per model call: 2 (steps 0–4), 3 (steps 5–19)': the plan at each step's own σ_i; with
    attention-space negatives, how many of them each call computes inside its attention layers."""
    steps = range(len(schedule) - 1)
    text = "conditionings per model call: " + step_runs(
        [len(plan_call(terms, schedule[i], schedule, to_sigma)) for i in steps])
    if attention:
        counts = [len(plan_attention(attention, schedule[i], schedule, to_sigma)) for i in steps]
        text += f"; attention-space negatives per model call (no extra model pass): {step_runs(counts)}"
    return text
