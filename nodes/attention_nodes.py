"""The attention nodes: capture cross-attention maps during sampling, then measure r_t from them."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

import comfy.utils
import folder_paths
from comfy_api.v0_0_2 import io

from ..attention import SCORES, AttentionStore, suggested_start
from ..attention.analysis import effect_maps, effect_terms, json_numbers, mean_curve, rt_curves, step_maps
from ..attention.export import write_exports
from ..attention.render import heatmap_grid, line_plot, overlay
from ..attention.tokens import find_columns, prompt_words
from .capture import capture_model
from .guidance_nodes import model_input

CATEGORY = "analysis/attention"
Capture = io.Custom("NEGATIVE_GUIDANCE_ATTENTION")
ENCODERS = ("clip_l", "clip_h", "clip_g")


@dataclass(frozen=True)
class CaptureHandle:
    """What flows from AttentionCapture to the analysis: the store and the captured words of each branch."""

    store: AttentionStore
    words: dict[str, list[str]]


def word_columns(node: str, input_name: str, clip, text: str, words: list[str], special: bool) -> list[list[int]]:
    """The context columns of each word of ``text`` (its BPE pieces, every occurrence); BOS/EOS if ``special``."""
    name = next((name for name in ENCODERS if hasattr(clip.tokenizer, name)), None)
    if name is None:
        raise ValueError(f"{node}: input 'clip' is not an SD1.x, SD2.x or SDXL text encoder")
    encoder = getattr(clip.tokenizer, name)  # SDXL's clip_l and clip_g share token positions
    rows = [[int(token) for token, *_ in row] for row in clip.tokenize(text)[name.removeprefix("clip_")]]
    columns = []
    for word in words:
        found = find_columns(rows, encoder.tokenizer(word)["input_ids"][1:-1])
        if not found:
            raise ValueError(f"{node}: input '{input_name}': '{word}' is not in the prompt; its words are: "
                             f"{', '.join(prompt_words(text))}")
        columns.append(found)
    if special:
        columns += [[0], [rows[0].index(encoder.end_token)]]
    return columns


def requested_words(text: str, words: str) -> list[str]:
    """The comma-separated ``words``, or every word of ``text`` when none are given."""
    chosen = [w.strip().lower() for w in words.split(",") if w.strip()]
    return chosen or prompt_words(text)


class AttentionCapture(io.ComfyNode):
    """Records the cross-attention maps of the prompts' words at every step, for AttentionRt."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="AttentionCapture",
            display_name="Attention Capture",
            category=CATEGORY,
            description="Patches a model so that sampling records, at every step, the head-averaged "
                        "cross-attention map of each word of the positive and the negative prompt, per layer, "
                        "at native resolution (average-pooled only where the run would pass max_mb). Samples are "
                        "unchanged. Feed the capture to AttentionRt.",
            inputs=[
                model_input(),
                io.Clip.Input("clip", tooltip="The CLIP that encoded the prompts: it maps words to tokens."),
                io.String.Input("positive_text", multiline=True, tooltip="The positive prompt's text, as encoded."),
                io.String.Input("negative_text", multiline=True, tooltip="The negative prompt's text, as encoded."),
                io.String.Input("positive_words", default="", tooltip="Comma-separated words of the positive "
                                "to capture. Empty (neutral) = every word."),
                io.String.Input("negative_words", default="", tooltip="Comma-separated words of the negative "
                                "to capture. Empty (neutral) = every word."),
                io.Boolean.Input("special_tokens", default=False, tooltip="Also capture the BOS and EOS tokens "
                                 "(<bos>, <eos>). Off (neutral): words only."),
                io.Float.Input("max_mb", default=50.0, min=1.0, max=65536.0, step=1.0, tooltip="Cap on the stored "
                               "maps in MB (50 (neutral) holds 50 steps of a 512×512 SD1 image with 2×10 words). "
                               "The run is planned before its first step; over_cap says what happens above it."),
                io.Combo.Input("over_cap", options=["downsample", "error"], default="downsample", tooltip="When "
                               "the run's maps would pass max_mb: downsample (neutral) average-pools the largest "
                               "maps until they fit (r_t still uses the native maps); error stops before sampling."),
            ],
            outputs=[io.Model.Output(), Capture.Output(display_name="capture")],
        )

    @classmethod
    def execute(cls, model, clip, positive_text, negative_text, positive_words, negative_words, special_tokens,
                max_mb, over_cap) -> io.NodeOutput:
        node, special = "AttentionCapture", ["<bos>", "<eos>"] if special_tokens else []
        words, columns = {}, {}
        for branch, text, chosen in (("positive", positive_text, positive_words),
                                     ("negative", negative_text, negative_words)):
            words[branch] = requested_words(text, chosen)
            columns[branch] = word_columns(node, f"{branch}_words", clip, text, words[branch], special_tokens)
            words[branch] += special
        store = AttentionStore(int(max_mb * 2**20), downsample=over_cap == "downsample")
        return io.NodeOutput(capture_model(model, store, columns), CaptureHandle(store, words))


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


def export_base(node: str, prefix: str) -> Path:
    """The next free '<prefix>_00001_' path in ComfyUI's output folder; a prefix that leaves the folder is refused."""
    try:
        folder, name, counter, _, _ = folder_paths.get_save_image_path(prefix, folder_paths.get_output_directory())
    except Exception as error:
        raise ValueError(f"{node}: input 'filename_prefix': {error}") from None
    return Path(folder) / f"{name}_{counter:05}_"


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
                        "the positive word whose time-aggregated map correlates best with the negative word's.",
            inputs=[
                Capture.Input("capture", tooltip="From AttentionCapture."),
                io.Latent.Input("samples", tooltip="The sampler's output: makes this node run after sampling."),
                io.Combo.Input("score", options=list(SCORES), default="frobenius", tooltip="frobenius: ‖A‖_F "
                               "(neutral); mean_square: mean(A²), as in Ban et al.'s released code."),
                io.Float.Input("gate_fraction", default=0.5, min=0.01, max=1.0, step=0.01, tooltip="The suggested "
                               "gate start is the first step where the mean r_t reaches this fraction of its peak."),
                io.String.Input("related", default="", tooltip="Override r(i): 'negative=positive' pairs, comma "
                                "separated (e.g. glasses=woman). Empty (neutral) = automatic."),
                io.String.Input("filename_prefix", default="negative_guidance/rt", tooltip="Where the JSON, CSV "
                                "and safetensors exports go, inside ComfyUI's output folder."),
                io.Image.Input("image", optional=True, tooltip="The decoded image (VAEDecode): overlay gets each "
                               "negative word's time-aggregated map over it. Not connected (neutral): no overlay."),
            ],
            outputs=[io.String.Output(display_name="r_t_json"), io.Int.Output(display_name="gate_step"),
                     io.Float.Output(display_name="gate_start"), io.Image.Output(display_name="r_t_plot"),
                     io.Image.Output(display_name="heatmaps"), io.Image.Output(display_name="effect_maps"),
                     io.Image.Output(display_name="overlay")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, capture: CaptureHandle, samples, score, gate_fraction, related, filename_prefix,
                image=None) -> io.NodeOutput:
        node, store = "AttentionRt", capture.store
        if not store.steps():
            raise ValueError(f"{node}: the capture holds no maps: its sampler did not run in this queue run (its "
                             "result was cached). Change the seed or any sampler input and queue again.")
        negatives, positives = capture.words["negative"], capture.words["positive"]
        pairs = parse_pairs(node, related, negatives, positives)
        neg_steps, pos_steps = step_maps(store, "negative"), step_maps(store, "positive")
        neg_agg = neg_steps.sum(0)
        progress = comfy.utils.ProgressBar(len(negatives))
        curves = rt_curves(store, negatives, positives, score, pairs, (neg_agg, pos_steps.sum(0)),
                           lambda: progress.update(1))
        mean = mean_curve(curves)
        if all(math.isnan(r) for r in mean):
            raise ValueError(f"{node}: no step evaluated both the negative and the positive prompt")
        step = suggested_start(mean, gate_fraction)
        start = step / len(store.steps())
        effects = effect_maps(store)  # (terms, steps, h, w): empty unless the capture ran with negative guidance
        data = {"score": score, "steps": store.steps(), "sigmas": [store.sigmas[t] for t in store.steps()],
                "curves": {w: c | {"r": json_numbers(c["r"])} for w, c in curves.items()}, "mean": json_numbers(mean),
                "gate_step": step, "gate_start": start,
                "effect": {term: effects[i].flatten(1).mean(1).tolist() for i, term in enumerate(effect_terms(store))}}
        text = json.dumps(data)
        write_exports(export_base(node, filename_prefix), data, store)
        summary = f"suggested neg_start {start:.2f} (step {step}); " + "; ".join(
            f"{w}→{c['related']}: peak r {peak:.3f} at step {c['r'].index(peak)}"
            for w, c in curves.items() if (peak := max((r for r in c["r"] if not math.isnan(r)), default=None)))
        plot = line_plot([c["r"] for c in curves.values()], marker=step)[None]
        heatmaps = heatmap_grid(torch.cat([pos_steps, neg_steps], dim=1).transpose(0, 1))[None]
        curves_ui = {"words": negatives, "related": [c["related"] for c in curves.values()],
                     "r": [json_numbers(c["r"]) for c in curves.values()], "gate_step": step, "score": score}
        shown = {"text": (summary,), "negative_guidance_rt": (curves_ui,)}  # drawn in the node by web/js
        effect_image = heatmap_grid(effects)[None] if len(effects) else torch.zeros(1, 64, 64, 3)
        overlays = (torch.stack([overlay(image[0], neg_agg[i]) for i in range(len(negatives))])
                    if image is not None else torch.zeros(1, 64, 64, 3))
        return io.NodeOutput(text, step, start, plot, heatmaps, effect_image, overlays, ui=shown)
