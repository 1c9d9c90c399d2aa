"""The attention capture as a model patch: it joins the model's attention site (nodes/site.py), whose hooks record
word maps into a per-run store at the model calls the capture hands a ``CallRecord``.

What is recorded, and when:
- only the guidance's own evaluation: the first ``calc_cond_batch`` of each ``predict_noise`` (the extra passes
  of PAG, SAG and other post-CFG hooks come after it and are never recorded);
- only at each step's own σ_i (one record per step; the intermediate calls of Heun or DPM2 are skipped);
- only the batch chunks of the captured prompts, told apart by the uuid ComfyUI gives each cond entry, so any
  guider's slot layout reads right.

Under attention-space negatives (AttentionNegativeTerm) at cfg 1 the negative prompt has no branch of its own; when
one of them is the capture's negative prompt, its maps are recorded as the "negative" branch: the positive rows'
image queries over that negative's text keys (the keys its Z⁻ is formed from), so r_t, the heatmaps and the gate
read it like a CFG negative. A call that evaluates the CFG negative records that one instead.

A capture never changes the picture: the site's hooks return the layer's own attention (ComfyUI's, the hook that was
installed before, or the one the attention-space negatives guide) and compute the maps beside it in fp32. Per model
call the recorder reads the step once; inside the attention calls nothing waits for the host, and a step's maps move
to the CPU when it ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

import comfy.patcher_extension
import comfy.samplers

from ..attention.maps import column_matrix, text_attention, word_maps
from ..attention.store import AttentionStore, LayerId
from ..attention.words import Word
from ..guidance import own_step
from .compat import first_shape, latent_shapes, own_steps_sampler, packed
from .contract import CALL, GUIDANCE, KEY, LATENT
from .patch import percent_to_sigma
from .site import check, family_refusal, join, site_of, whole

WRAPPERS = comfy.patcher_extension.WrappersMP


@dataclass(frozen=True)
class Prompt:
    """A captured prompt: its conditioning tensor, its context length as the model reads it, its captured words (by
    their columns there), and the pads the model puts before the conditioning's tokens (Flux.2 dev)."""

    conditioning: torch.Tensor
    length: int
    words: tuple[Word, ...]
    padding: int = 0


def fingerprint(samples) -> str:
    """A run's identity: the sha1 of its output latent's bytes (what the sampler node hands on; latents sampled
    together, as the sampler packs them)."""
    data = packed(samples).detach().to("cpu", torch.float32).contiguous()
    return hashlib.sha1(data.numpy().tobytes() + str(tuple(data.shape)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunFacts:
    """What AttentionRt needs to explain a run that never evaluated its negative."""

    guider: str
    cfg1_skips_negative: bool
    negative_off: str | None  # under the pack's guidance patch: why its negative is off at every step
    out_of_range: str | None = None  # why the sampler's negative, limited to a timestep range, holds no step of the run


@dataclass(frozen=True)
class FinishedRun:
    store: AttentionStore
    facts: RunFacts


@dataclass
class Recorder:
    """One AttentionCapture's state: the run being recorded and the finished runs, by the fingerprint of each one's
    output latent, oldest first, as many as fit ``max_bytes`` beside the next run (``reset`` forgets them all).
    So a sampler whose result ComfyUI cached still finds its own run's maps while they are kept."""

    node: str
    family: object
    prompts: dict[str, Prompt]
    max_bytes: int
    downsample: bool
    store: AttentionStore | None = None
    facts: RunFacts | None = None
    runs: dict[str, FinishedRun] = field(default_factory=dict)
    armed: bool = False
    branch_of: dict = field(default_factory=dict)
    sample_sigmas: list[float] = field(default_factory=list)
    selects: dict = field(default_factory=dict)
    attention_negative: int | None = None  # the AttentionNegativeTerm (chain index) that is the negative prompt

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options: every clone shares one recorder
        return self

    def reset(self) -> None:
        self.store = self.facts = None
        self.armed = False
        self.branch_of, self.selects, self.runs = {}, {}, {}

    @property
    def finished(self) -> AttentionStore | None:
        """The latest finished run's store."""
        return next(reversed(self.runs.values())).store if self.runs else None

    def run_of(self, samples: torch.Tensor) -> FinishedRun | None:
        """The finished run whose output is ``samples``, if its maps are still kept."""
        return self.runs.get(fingerprint(samples))

    def begin_run(self, guider, latent_shape: tuple[int, ...], sigmas: torch.Tensor) -> None:
        """Check the run and plan its store, before its first step."""
        self.branch_of = branch_uuids(self.node, guider.conds, self.prompts)
        self.sample_sigmas = sigmas.tolist()
        steps = len(self.sample_sigmas) - 1
        diffusion_model = guider.model_patcher.get_model_object("diffusion_model")
        layers = self.family.layers(diffusion_model, latent_shape)
        guidance = guider.model_options.get(GUIDANCE)
        negatives = 0 if guidance is None else len(guidance.negative_keys(guider.cfg)) + bool(guidance.attention)
        negative = self.prompts.get("negative")  # none when negative_text is empty
        self.attention_negative = None if guidance is None or negative is None else next(
            (i for i, term in enumerate(guidance.attention) if same_tensor(term.context, negative.conditioning)), None)
        self.store = AttentionStore(self.max_bytes, self.downsample)
        try:
            self.store.plan(layers, latent_shape[0] * sum(len(p.words) for p in self.prompts.values()), steps,
                            effect_pixels=negatives * latent_shape[0] * int(torch.Size(latent_shape[2:]).numel()))
        except MemoryError as error:
            raise ValueError(f"{self.node}: input 'max_mb': {error}") from None
        while self.runs and sum(run.store.nbytes for run in self.runs.values()) + self.store.planned > self.max_bytes:
            self.runs.pop(next(iter(self.runs)))  # the oldest run makes room for this one
        self.selects = {}
        self.facts = run_facts(guider, self.sample_sigmas, self.attention_negative)

    def end_run(self, samples: torch.Tensor) -> None:
        self.store.flush()
        self.store.fingerprint = fingerprint(samples)
        self.runs.pop(self.store.fingerprint, None)
        self.runs[self.store.fingerprint] = FinishedRun(self.store, self.facts)
        self.store = None

    def begin_call(self, timestep: torch.Tensor, latent_shape: tuple[int, ...], conds: list) -> CallRecord | None:
        """The record of the guidance's own evaluation at ``timestep``, or None between a step's own sigmas."""
        sigma = float(timestep[0])  # the one host sync of a model call
        step = own_step(self.sample_sigmas, sigma)
        if step is None:
            return None
        self.store.begin_step(step, sigma)
        negative = any(self.branch_of.get(e.get("uuid")) == "negative" for cond in conds if cond for e in cond)
        return CallRecord(self, latent_shape, negative_evaluated=negative)

    def select(self, branch: str, tokens: int, device: torch.device, cut: bool = False) -> torch.Tensor:
        """The (tokens, words) column matrix of a branch in a context of ``tokens`` (``cut``: an attention-space
        negative's, which a family may cut to its unmasked tokens), built once per run and device."""
        key = (branch, tokens, device)
        if key not in self.selects:
            prompt = self.prompts[branch]
            padded = getattr(self.family, "context_length", None)
            matrix = column_matrix([w.columns for w in prompt.words], prompt.length, tokens, cut,
                                   None if padded is None else padded(prompt.length))
            self.selects[key] = matrix.to(device, non_blocking=True)
        return self.selects[key]

    def add_effect(self, step: int, term: str, effect: torch.Tensor) -> None:
        """From the guidance batch: where a negative term acted at the step just evaluated."""
        if self.store is not None and self.store.step == step:
            self.store.add_effect(term, effect)


@dataclass
class CallRecord:
    """One recorded model evaluation: the recorder, the sampled latent's shape, and what a family's blocks learn on
    the way (Flux's single blocks reuse the text length its double blocks saw). A captured prompt is never in an
    area's crop (refused before sampling)."""

    recorder: Recorder
    latent_shape: tuple[int, ...]
    text_tokens: int | None = None
    negative_evaluated: bool = False  # the CFG negative is in this call's batch

    def record(self, layer: LayerId, uuids: Sequence, q: torch.Tensor, k: torch.Tensor, heads: int,
               queries: slice, keys: slice, heads_split: bool = False, term: int | None = None,
               mask: torch.Tensor | None = None) -> None:
        """Store the word maps of every captured chunk of this layer's batch (no host sync). With ``term``, the keys
        are that attention-space negative's text: its maps from the positive rows are the "negative" branch's when
        it is the capture's negative prompt and the CFG negative is not evaluated. ``mask``: the call's additive key
        mask (B or 1, 1, 1, keys), applied as the layer's attention applied it."""
        branches = [self.recorder.branch_of.get(u) for u in uuids]
        if term is not None:
            if term != self.recorder.attention_negative or self.negative_evaluated:
                return
            branches = ["negative" if b == "positive" else None for b in branches]
        wanted = [(i, b) for i, b in enumerate(branches) if b is not None]
        if not wanted:
            return
        rows = q.shape[0] // len(branches)
        pick = lambda x: x if len(wanted) == len(branches) else torch.cat(  # noqa: E731
            [x[i * rows:(i + 1) * rows] for i, _ in wanted])
        bias = None if mask is None else mask[..., keys]
        if bias is not None and bias.shape[0] == q.shape[0]:
            bias = pick(bias)
        probs = text_attention(pick(q), pick(k), heads, queries, keys, heads_split, bias=bias)
        store = self.recorder.store
        for j, (_, branch) in enumerate(wanted):
            select = self.recorder.select(branch, probs.shape[-1], probs.device, cut=term is not None)
            store.add(layer, branch, word_maps(probs[j * rows:(j + 1) * rows], select, layer.grid))

    def record_texts(self, layer: LayerId, options: dict, q: torch.Tensor, k: torch.Tensor, heads: int,
                     texts: Sequence[tuple[int | None, slice, slice]], heads_split: bool = False,
                     mask: torch.Tensor | None = None) -> None:
        """``record`` for each text of an attention call: (the attention-space negative's chain index, or None for
        the call's own branches; the image queries; the text's keys). A captured prompt on part of the latent (a
        node that samples it in tiles; an area prompt is refused before sampling) stops the run: the capture maps
        the whole latent."""
        uuids = options["uuids"]
        if not whole(options, self.latent_shape) and any(self.recorder.branch_of.get(u) for u in uuids):
            raise RuntimeError(f"{self.recorder.node}: a captured prompt ran on part of the latent "
                               f"({options[LATENT][2:]} of {self.latent_shape[2:]}): a node samples the latent in "
                               "tiles, and the capture maps the whole latent. Remove that node to capture this run.")
        for term, queries, keys in texts:
            self.record(layer, uuids, q, k, heads, queries, keys, heads_split, term=term, mask=mask)


def branch_uuids(node: str, conds: dict, prompts: dict[str, Prompt]) -> dict:
    """uuid of each guider cond entry → the captured branch it is; every captured prompt must be sampled."""
    found = {}
    for branch, prompt in prompts.items():
        entries = [e for e in conds.get(branch) or () if same_tensor(e.get("cross_attn"), prompt.conditioning)]
        if not conds.get(branch):
            raise ValueError(f"{node}: the sampler has no {branch} prompt (a guider such as BasicGuider): use "
                             "KSampler, CFGGuider or NegativeGuidanceGuider to capture both prompts")
        if not entries:
            raise ValueError(f"{node}: the sampler's {branch} prompt is not {branch}_text, so its words cannot be "
                             f"mapped. Wire AttentionCapture's {branch} output to the sampler's {branch} input (the "
                             "capture encodes the text itself).")
        if any("area" in e or (e.get("mask") is not None and e.get("set_area_to_bounds")) for e in entries):
            raise ValueError(f"{node}: the sampler's {branch} prompt is set to an area (ConditioningSetArea, or a mask "
                             "cropped to its bounds), so the model sees it over a crop, not the image the capture "
                             f"maps. Capture it over the whole image: combine area prompts with the capture's {branch} "
                             "output after it (ConditioningCombine).")
        found |= {e["uuid"]: branch for e in entries}
    return found


def same_tensor(a, b: torch.Tensor) -> bool:
    return a is b or (torch.is_tensor(a) and a.shape == b.shape and torch.equal(a.to(b.device), b))


def run_facts(guider, sample_sigmas: list[float], attention_negative: int | None) -> RunFacts:
    """The settings that decide whether the negative is evaluated in this run (``attention_negative``: the chain
    index of the AttentionNegativeTerm that carries the captured negative, if one does)."""
    options = guider.model_options
    guidance = options.get(GUIDANCE)
    skips = (type(guider).predict_noise is comfy.samplers.CFGGuider.predict_noise and guider.cfg == 1.0
             and not options.get("disable_cfg1_optimization", False))
    off = None if guidance is None else guidance.negative_off(guider, sample_sigmas, attention_negative)
    return RunFacts(type(guider).__name__, skips, off, out_of_range(guider, sample_sigmas))


def out_of_range(guider, sample_sigmas: list[float]) -> str | None:
    """Why no step of this run evaluates the sampler's negative, when ConditioningSetTimestepRange limits each of its
    entries to a part of the schedule the run does not reach (a KSamplerAdvanced sampling another part); else None.
    An entry runs at σ when σ(end) ≤ σ ≤ σ(start), as ComfyUI's get_area_and_mult decides."""
    ranges = [(e.get("start_percent", 0.0), e.get("end_percent", 1.0)) for e in guider.conds.get("negative") or ()]
    if not ranges or all(r == (0.0, 1.0) for r in ranges):
        return None
    to_sigma = percent_to_sigma(guider.model_patcher.get_model_object("model_sampling"), torch.float32)
    steps = sample_sigmas[:-1]
    if any(to_sigma(end) <= sigma <= to_sigma(start) for start, end in ranges for sigma in steps):
        return None
    spans = ", ".join(f"{start:g}–{end:g}" for start, end in dict.fromkeys(ranges))
    return (f"ConditioningSetTimestepRange limits the sampler's negative to {spans} of the schedule, and this run's "
            f"{len(steps)} steps (σ {steps[0]:.4g} to {steps[-1]:.4g}) lie outside it: a sampler that runs part of "
            "the schedule (KSamplerAdvanced's start_at_step and end_at_step) never reached it. Capture the part "
            "where the negative runs")


def is_captured(model) -> bool:
    """Whether an AttentionCapture already joined ``model``'s attention site."""
    site = site_of(model.model_options)
    return site is not None and site.recorder is not None


def capture_model(model, recorder: Recorder):
    """A clone of ``model`` whose sampling records the recorder's prompts; the incoming model is left untouched."""
    patched = join(model, recorder.family, recorder.node, recorder=recorder)

    def outer_sample(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        if (own := own_steps_sampler(sampler)) is not None:
            raise ValueError(f"{recorder.node}: the sampler {own} picks its own steps between the schedule's ends, so "
                             "the capture would record its first step only. Use a sampler that steps through the "
                             "schedule (euler, dpmpp_2m, …).")
        guider = executor.class_obj
        check(recorder.node, guider, "that layer would record nothing")
        if (why := family_refusal(recorder.family, "capture_refusal", guider)) is not None:
            raise ValueError(f"{recorder.node}: {why}.")
        shapes = latent_shapes(latent_image, kwargs)
        if len(shapes) > 1 and not getattr(recorder.family, "PACKED", False):
            raise ValueError(f"{recorder.node}: the sampler's latent holds {len(shapes)} latents sampled together "
                             f"({', '.join(map(str, shapes))}), and the capture maps the tokens of one latent. Sample "
                             "a single latent (image or video) to capture it.")
        recorder.begin_run(guider, shapes[0], sigmas)
        samples = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        recorder.end_run(samples)
        return samples

    def predict_noise(executor, *args, **kwargs):
        recorder.armed = True  # the first calc_cond_batch from here on is the guidance's own
        try:
            return executor(*args, **kwargs)
        finally:
            recorder.armed = False

    def calc_cond_batch(executor, model, conds, x_in, timestep, model_options):
        if not recorder.armed:
            return executor(model, conds, x_in, timestep, model_options)
        recorder.armed = False
        call = recorder.begin_call(timestep, first_shape(model, x_in), conds)
        if call is not None:
            options = model_options.get("transformer_options", {})
            model_options = {**model_options, "transformer_options": {**options, CALL: call}}
        return executor(model, conds, x_in, timestep, model_options)

    for kind, wrapper in ((WRAPPERS.OUTER_SAMPLE, outer_sample), (WRAPPERS.PREDICT_NOISE, predict_noise),
                          (WRAPPERS.CALC_COND_BATCH, calc_cond_batch)):
        patched.add_wrapper_with_key(kind, f"{KEY}.capture", wrapper)
    return patched
