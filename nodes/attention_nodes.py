"""The attention nodes: capture the prompts' word maps during sampling, then measure r_t from them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.v0_0_2 import io

from ..attention import SCORES
from ..attention.analysis import Report, analyse
from ..attention.export import write_exports
from ..attention.pictures import effects_picture, heatmaps_picture, overlay_pictures, rt_picture
from ..attention.words import choose, default_words
from .capture import Prompt, Recorder, capture_model, is_captured
from .families import UnsupportedModel, family_of
from .families.text import UnsupportedText
from .guidance_nodes import model_input
from .inputs import check_combo, check_finite, check_prefix, first_error
from .prompts import encode
from .site import negpip_message

CATEGORY = "analysis/attention"
Capture = io.Custom("NEGATIVE_GUIDANCE_ATTENTION")
OVER_CAP = ("downsample", "error")
BRANCHES = ("positive", "negative")


@dataclass(frozen=True)
class CaptureHandle:
    """What flows from AttentionCapture to the analysis: the recorder and the captured words of each branch."""

    recorder: Recorder
    words: dict[str, list[str]]
    texts: dict[str, str]  # the prompts as typed


def prompt(node: str, family, clip, branch: str, text: str, requested: str, special: bool) -> tuple[list, Prompt]:
    """Encode one prompt and map its requested words to context columns; errors name the input."""
    conditioning = encode(clip, text)
    try:
        tokens = family.text(clip, text)
    except UnsupportedText as error:
        raise ValueError(f"{node}: input 'clip' is not the text encoder of this {family.NAME} model: {error}") from None
    length = conditioning[0][0].shape[1]
    if tokens.length - tokens.padding != length:
        raise ValueError(f"{node}: input 'clip': its {branch} context has {length} tokens where the {family.NAME} "
                         f"layout gives {tokens.length - tokens.padding}; this text encoder is not one the capture "
                         "can map")
    words = tokens.words()
    try:
        chosen = choose(words, requested)
    except KeyError as missing:
        raise ValueError(f"{node}: input '{branch}_words': '{missing.args[0]}' is not in the prompt; its words are: "
                         f"{', '.join(w.text for w in default_words(words))}") from None
    chosen += tokens.special_words() if special else []
    return conditioning, Prompt(conditioning[0][0], tokens.length, tuple(chosen), tokens.padding)


class AttentionCapture(io.ComfyNode):
    """Encodes the two prompts and patches the model so that sampling records their words' attention maps."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AttentionCapture",
            display_name="Attention Capture",
            category=CATEGORY,
            description="Encodes the positive and the negative prompt (wire its positive and negative outputs to the "
                        "sampler) and patches the model so that sampling records, at every step, the head-averaged "
                        "attention map of each of their words, per layer, at native resolution (average-pooled only "
                        "where the run would pass max_mb). Samples are unchanged. Feed the capture to AttentionRt.",
            inputs=[
                model_input(),
                io.Clip.Input("clip", tooltip="The model's text encoder: it encodes both prompts and maps their "
                              "words to tokens."),
                io.String.Input("positive_text", multiline=True, tooltip="The positive prompt. Encoded here: wire "
                                "the positive output to the sampler."),
                io.String.Input("negative_text", multiline=True, tooltip="The negative prompt. Encoded here: wire "
                                "the negative output to the sampler."),
                io.String.Input("positive_words", default="", tooltip="Comma-separated words of the positive "
                                "to capture. Empty (neutral) = every word."),
                io.String.Input("negative_words", default="", tooltip="Comma-separated words of the negative "
                                "to capture. Empty (neutral) = every word."),
                io.Boolean.Input("special_tokens", default=False, tooltip="Also capture the start, end and padding "
                                 "tokens (<bos>, <eos>, <pad>) where the text encoder has them. Off (neutral): words "
                                 "only."),
                io.Float.Input("max_mb", default=50.0, min=1.0, max=65536.0, step=1.0, tooltip="Cap on the stored "
                               "maps and effect maps of one run, in MiB of 2²⁰ bytes (50 (neutral) holds 50 steps "
                               "of a 512×512 SD1 image with 2×10 words). The run is planned before its first "
                               "step; over_cap says what happens above it."),
                io.Combo.Input("over_cap", options=list(OVER_CAP), default="downsample", tooltip="When the run's "
                               "maps would pass max_mb: downsample (neutral) average-pools the largest maps until "
                               "they fit (r_t still uses the native maps); error stops before sampling."),
            ],
            outputs=[io.Model.Output(tooltip="The model with the capture: sample with it."),
                     Capture.Output(display_name="capture", tooltip="The recorded maps, for AttentionRt."),
                     io.Conditioning.Output(display_name="positive", tooltip="positive_text, encoded: the "
                                            "sampler's positive."),
                     io.Conditioning.Output(display_name="negative", tooltip="negative_text, encoded: the "
                                            "sampler's negative.")],
        )

    @classmethod
    def validate_inputs(cls, max_mb=None, over_cap=None):
        return first_error(check_finite("AttentionCapture", "max_mb", max_mb, 1.0, 65536.0),
                           check_combo("AttentionCapture", "over_cap", over_cap, OVER_CAP))

    @classmethod
    def execute(cls, model, clip, positive_text, negative_text, positive_words, negative_words, special_tokens,
                max_mb, over_cap) -> io.NodeOutput:
        node = "AttentionCapture"
        try:
            family = family_of(model)
        except UnsupportedModel as error:
            raise ValueError(f"{node}: input 'model': {error}") from None
        for what, options in (("input 'model'", model.model_options), ("input 'clip'", clip.patcher.model_options)):
            if (refusal := negpip_message(node, options, what)) is not None:
                raise ValueError(refusal)
        if is_captured(model):
            raise ValueError(f"{node}: input 'model' comes from another AttentionCapture: one capture records every "
                             "map of the run. Keep one AttentionCapture on this model chain and analyse its capture "
                             "output with as many AttentionRt nodes as needed.")
        if not positive_text.strip() and not negative_text.strip():
            raise ValueError(f"{node}: inputs 'positive_text' and 'negative_text' are both empty: type the prompts "
                             "here, where they are encoded and captured")
        conditionings, prompts = {}, {}
        for branch, text, requested in (("positive", positive_text, positive_words),
                                        ("negative", negative_text, negative_words)):
            conditionings[branch], captured = prompt(node, family, clip, branch, text, requested, special_tokens)
            if captured.words:
                prompts[branch] = captured
        recorder = Recorder(node, family, prompts, int(max_mb * 2**20), over_cap == "downsample")
        words = {branch: [w.text for w in prompts[branch].words] if branch in prompts else [] for branch in BRANCHES}
        handle = CaptureHandle(recorder, words, {"positive": positive_text, "negative": negative_text})
        return io.NodeOutput(capture_model(model, recorder), handle, conditionings["positive"],
                             conditionings["negative"])


def parse_pairs(node: str, text: str, negatives: list[str], positives: list[str]) -> dict[str, str]:
    """'glasses=woman; hat=man' → {negative word: positive word}, each checked against the captured words."""
    pairs = {}
    for item in filter(None, (part.strip() for part in text.replace(";", ",").split(","))):
        neg, _, pos = (s.strip().lower() for s in item.partition("="))
        if neg not in negatives or pos not in positives:
            raise ValueError(f"{node}: input 'related': '{item}' must be negative=positive with captured words; "
                             f"negative: {', '.join(negatives)}; positive: {', '.join(positives)}")
        pairs[neg] = pos
    return pairs


def export_base(node: str, prefix: str) -> str:
    """The next free '<prefix>_00001_' path in ComfyUI's output folder; a prefix that leaves the folder is refused."""
    try:
        folder, name, counter, _, _ = folder_paths.get_save_image_path(prefix, folder_paths.get_output_directory())
    except Exception as error:
        raise ValueError(f"{node}: input 'filename_prefix': {error}") from None
    return str(Path(folder) / f"{name}_{counter:05}_")


def finished_run(node: str, capture: CaptureHandle, samples: dict):
    """The store of the run that produced ``samples``, or a message saying why its maps are not here."""
    recorder = capture.recorder
    if not recorder.runs:
        raise ValueError(f"{node}: the capture recorded no finished run: wire AttentionCapture's MODEL to the "
                         "sampler whose LATENT goes into 'samples' (a run that was interrupted records nothing)")
    run = recorder.run_of(samples["samples"])
    if run is None:
        raise ValueError(f"{node}: the maps of the run that made input 'samples' are gone: later runs of this "
                         "capture replaced them (ComfyUI reused the sampler's cached result), or 'samples' is not the "
                         "output of a sampler with the capture's MODEL. Change any sampler input, e.g. the seed, and "
                         "queue again; wire the sampler's output straight into 'samples'.")
    for branch in BRANCHES:
        if not capture.words[branch]:
            text = capture.texts[branch]
            what = (f"'{text}' has no word to measure (punctuation and characters the tokenizer drops are not words)"
                    if text.strip() else "is empty")
            raise ValueError(f"{node}: {branch}_text of AttentionCapture {what}: r_t compares the negative's words "
                             "with the positive's")
    if "negative" not in run.store.branches():
        raise ValueError(f"{node}: the negative prompt was never evaluated in this run: {never_evaluated(run.facts)}")
    return run.store


def never_evaluated(facts) -> str:
    """Why a run never evaluated its negative."""
    if facts.cfg1_skips_negative:
        return ("the sampler ran at cfg 1, where ComfyUI skips the negative prompt. Raise cfg, or use "
                "NegativeGuidanceCFG, which evaluates the negative at any cfg")
    if facts.negative_off is not None:
        return f"NegativeGuidance switched it off at every step: {facts.negative_off}"
    if facts.out_of_range is not None:
        return facts.out_of_range
    return f"its guider {facts.guider} did not evaluate it"


class AttentionRt(io.ComfyNode):
    """r_t curves of every negative word against its most related positive word, and a suggested gate start."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AttentionRt",
            display_name="Attention r_t",
            category=CATEGORY,
            description="r_t = Σ_k s(A_k,neg(i)) / Σ_k s(A_k,pos(r(i))) per step (Ban et al. 2024): how strongly "
                        "each negative word attends compared with its most related positive word r(i). r(i) is "
                        "the same word when the positive has it; else the word the maps single out (correlation "
                        "≥ 0.5, 0.2 above the subject's); else, in an English prompt, its subject (\"photo of "
                        "a dog\" → dog, \"masterpiece, 1girl, solo\" → girl); else the content word whose map "
                        "correlates best. "
                        "Every image of the batch gets its own curve; the gate reads their mean.",
            inputs=[
                Capture.Input("capture", tooltip="From AttentionCapture."),
                io.Latent.Input("samples", tooltip="The sampler's output LATENT: identifies the run to analyse and "
                                "makes this node run after sampling."),
                io.Combo.Input("score", options=list(SCORES), default="frobenius", tooltip="frobenius: ‖A‖_F "
                               "(neutral); mean_square: mean(A²), as in Ban et al.'s released code."),
                io.Float.Input("gate_fraction", default=0.5, min=0.01, max=1.0, step=0.01, tooltip="The suggested "
                               "gate start is the first step where the mean r_t has risen this fraction of the way "
                               "from its first step's value r₀ to its peak: r_t − r₀ ≥ f·(max r_t − r₀)."),
                io.String.Input("related", default="", tooltip="Override r(i): 'negative=positive' pairs, comma "
                                "separated (e.g. glasses=woman). Empty (neutral) = automatic."),
                io.String.Input("filename_prefix", default="negative_guidance/rt", tooltip="Where the JSON, CSV "
                                "and safetensors exports go, inside ComfyUI's output folder; each run gets its own "
                                "numbered files."),
                io.Image.Input("image", optional=True, tooltip="The decoded images (VAEDecode): overlay gets each "
                               "negative word's time-aggregated map over each image. Not connected (neutral): no "
                               "overlay."),
            ],
            outputs=[io.String.Output(display_name="r_t_json", tooltip="The report as JSON: per word its r(i), "
                                      "r_t per step (mean and per image), the gate and the effect per step."),
                     io.Int.Output(display_name="gate_step", tooltip="The suggested first step of the negative."),
                     io.Float.Output(display_name="gate_start", tooltip="gate_step as a neg_start in steps units: "
                                     "wire it into NegativeGuidanceCFG or NegativeTerm."),
                     io.Image.Output(display_name="r_t_plot", tooltip="r_t per step of each negative word."),
                     io.Image.Output(display_name="heatmaps", tooltip="Each word's map (rows) at each step "
                                     "(columns), positive words first."),
                     io.Image.Output(display_name="effect_maps", tooltip="|w⁻·(n − u)| per negative term and step, "
                                     "where the negative changed the prediction (under NegativeGuidance only)."),
                     io.Image.Output(display_name="overlay", tooltip="Each negative word's map over each image.")],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, score=None, gate_fraction=None, filename_prefix=None):
        node = "AttentionRt"
        return first_error(check_combo(node, "score", score, SCORES),
                           check_finite(node, "gate_fraction", gate_fraction, 0.01, 1.0),
                           check_prefix(node, filename_prefix))

    @classmethod
    def execute(cls, capture: CaptureHandle, samples, score, gate_fraction, related, filename_prefix,
                image=None) -> io.NodeOutput:
        node = "AttentionRt"
        store = finished_run(node, capture, samples)
        negatives, positives = capture.words["negative"], capture.words["positive"]
        pairs = parse_pairs(node, related, negatives, positives)
        progress = comfy.utils.ProgressBar(len(negatives))
        report = analyse(store, capture.words, score, gate_fraction, pairs, word_embeddings(capture.recorder.prompts),
                         lambda: progress.update(1), capture.texts["positive"])
        data = report.to_json()
        write_exports(export_base(node, filename_prefix), data, store)
        plot, heatmaps, effects, overlays = pictures(report, capture.words, image)
        shown = {"text": (summary(report),), "negative_guidance_rt": (curves_ui(report),)}  # drawn by web/js
        return io.NodeOutput(json.dumps(data), report.gate_step, report.gate_start, plot, heatmaps, effects, overlays,
                             ui=shown)


def word_embeddings(prompts: dict[str, Prompt]) -> dict[str, torch.Tensor]:
    """Each captured word's rows of its encoded prompt, averaged: (words, width) per branch (r(i)'s tie-break)."""
    return {branch: torch.stack([p.conditioning[0, [c - p.padding for c in w.columns]].float().mean(0)
                                 for w in p.words]) for branch, p in prompts.items()}


def summary(report: Report) -> str:
    def peak(curve):
        finite = [(r, t) for t, r in enumerate(curve.r) if not math.isnan(r)]
        return max(finite) if finite else (math.nan, 0)

    return f"suggested neg_start {report.gate_start:.2f} (step {report.gate_step}); " + "; ".join(
        f"{c.word}→{c.related}: peak r {peak(c)[0]:.3f} at step {peak(c)[1]}" for c in report.curves)


def curves_ui(report: Report) -> dict:
    data = report.to_json()
    return {"words": [c.word for c in report.curves], "related": [c.related for c in report.curves],
            "r": [data["curves"][c.word]["r"] for c in report.curves], "gate_step": report.gate_step,
            "score": report.score}


def pictures(report: Report, words: dict[str, list[str]], image: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    """The r_t plot, the word × step heatmaps, the effect maps and the overlays, as IMAGE batches on ComfyUI's
    IMAGE device; a small grey placeholder where there is nothing to show."""
    placeholder = torch.full((1, 64, 64, 3), 0.5)
    effects = effects_picture(report)
    shown = (rt_picture(report)[None], heatmaps_picture(report, words)[None],
             placeholder if effects is None else effects[None],
             placeholder if image is None else overlay_pictures(report, image.cpu()))
    device = comfy.model_management.intermediate_device()
    return tuple(x.to(device) for x in shown)
