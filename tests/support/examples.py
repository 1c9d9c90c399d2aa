"""The example workflows: example_workflows/<name>.json (UI format, with a note inside the graph) and <name>.jpg (the
template's thumbnail), built from the API-format graphs below.

    python tests/support/examples.py            # every example: JSON and thumbnail (7.7 min on 2 busy cores)
    python tests/support/examples.py --toy      # only the toy-model examples (after the toy model changes)
    python tests/support/examples.py --real     # only the examples that need real models (their screenshots)
    python tests/support/examples.py 1_ 4_      # only the examples whose names start so
    python tests/support/examples.py --json     # JSON only (no runs, no screenshots)

(with the test venv's Python, e.g. ~/.cache/comfyui-negative-guidance/venv-*/bin/python, on the default ComfyUI; the
screenshots need Debian's chromium and chromium-driver, and selenium, as the browser tests do)

Examples 1–5 and 10 load the toy concept model the pack ships (ToyConceptModelLoader), so they run offline as they
are and their thumbnails are real runs. The others load real models by the file names users have (SDXL, SD3.5 medium,
Flux.1 dev, Wan 2.1 t2v 1.3B, Flux.2 Klein 4B, Z-Image Turbo, Wan 2.2 t2v 14B with its 4-step LoRAs), which this
project cannot have: their thumbnails are screenshots of the workflow in ComfyUI's frontend, framed on the pack's
nodes (tests/support/screenshots.py), and the tests run them on the tiny seeded model of the same family
(``on_test_models``: NegativeGuidanceTestTinyFamily in place of every loader, LoRA loaders bypassed, small latents,
few steps).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # the harness, when run as a script

import harness  # noqa: E402
from graphs import Graph, custom_sample, ksampler  # noqa: E402

POSITIVE, NEGATIVE = "a red circle with eyes", "hat"
STANDARD = dict(mode="standard", neg_scale=6.0, neg_end=1.0, window_unit="steps", neg_schedule="constant")
CAPTURE = dict(positive_words="", negative_words="", special_tokens=False, max_mb=50.0, over_cap="downsample")
RT = dict(score="frobenius", gate_fraction=0.5, related="")
ATTENTION_TERM = dict(scale=4.0, tau=2.5, alpha=0.25, start=0.2, end=1.0, window_unit="steps", schedule="constant")
OUTPUT_NAMES = {"MODEL": 0, "CLIP": 1, "VAE": 2}  # the test loaders' outputs


class Example(Graph):
    """An API-format graph, the note shown inside its UI form, the nodes whose images make its thumbnail (a toy
    example's) and the nodes its screenshot frames (an example that needs real models)."""

    def __init__(self, note: str):
        super().__init__()
        self.note = note
        self.shown: list[str] = []
        self.names: list[str] = []
        self.framed: list[str] = []

    def show(self, link: list, name: str = "", first: bool = False) -> list:
        """Put this output node's first image into the thumbnail (in the order of the calls, or first), named."""
        index = 0 if first else len(self.shown)
        self.shown.insert(index, link[0])
        self.names.insert(index, name)
        return link

    def frame(self, link: list) -> list:
        """Put this node into the screenshot that is the thumbnail of an example that needs real models."""
        self.framed.append(link[0])
        return link


@dataclass(frozen=True)
class Spec:
    """How an example is built; ``family``: None for the toy model (runs as shipped; its thumbnail is a run), else
    the tiny family its API form runs on in the tests (its thumbnail is a screenshot); ``label``: the thumbnail's
    caption."""

    build: Callable[[], Example]
    family: str | None
    label: tuple[str, ...]


def base(g: Example, texts: dict[str, str], size: int = 256):
    """Toy loader, one CLIPTextEncode per text, an empty latent (the toy model samples at 1/8 of its size):
    (model, vae, conds, latent)."""
    loader = g.node("ToyConceptModelLoader")
    conds = {name: g.node("CLIPTextEncode", text=text, clip=g.out(loader, 1)) for name, text in texts.items()}
    latent = g.node("EmptyLatentImage", width=size, height=size, batch_size=1)
    return loader, g.out(loader, 2), conds, latent


def save(g: Example, samples, vae, prefix: str, name: str = ""):
    image = g.node("VAEDecode", samples=samples, vae=vae)
    g.show(g.node("SaveImage", images=image, filename_prefix=prefix), name)
    return image


def standard_negative() -> Example:
    """Eq. 9 through NegativeGuidanceCFG and the stock KSampler: the negative replaces u."""
    g = Example(
        "## Standard negative (eq. 9), toy model\n\n"
        "**Look at:** the saved image, and the line under *Negative Guidance CFG*: how many conditionings each model "
        "call evaluates.\n\n"
        "mode *standard* with the window 0–1 is Stable Diffusion's negative prompt, x̂ = n + cfg·(p − n): the "
        "picture is the plain KSampler's, pixel for pixel. Raise `neg_start` to switch the negative on later "
        "(u stands in for it before), or set mode *independent* to choose its strength apart from cfg.\n\n"
        "Runs offline on the toy concept model the pack ships (32×32 pictures of one shape).")
    model, vae, c, latent = base(g, {"p": POSITIVE, "n": NEGATIVE})
    patched = g.node("NegativeGuidanceCFG", model=model, clip=g.out(model, 1), neg_start=0.0, **STANDARD)
    save(g, ksampler(g, patched, c["p"], c["n"], latent, steps=20, seed=1), vae, "negative_guidance/standard")
    return g


def independent_scales() -> Example:
    """Eq. 8: x̂ = u + cfg·(p − u) − neg_scale·(n − u), NegativeGuidanceGuider into SamplerCustomAdvanced."""
    g = Example(
        "## Independent scales (eq. 8), toy model\n\n"
        "**Look at:** the saved image while you change `neg_scale` alone: x̂ = u + cfg·(p − u) − neg_scale·(n − u), "
        "so the negative's push (4 here) no longer moves with cfg (7).\n\n"
        "The guider evaluates p, n and the empty prompt u in one batched model call (its readout says 3); it "
        "encodes u itself from `clip`. Runs offline on the toy concept model.")
    model, vae, c, latent = base(g, {"p": POSITIVE, "n": NEGATIVE})
    guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0,
                    clip=g.out(model, 1), mode="independent", neg_scale=4.0, neg_start=0.0, neg_end=1.0,
                    window_unit="steps", neg_schedule="constant")
    save(g, custom_sample(g, model, guider, latent, steps=20, seed=1), vae, "negative_guidance/eq8")
    return g


def delayed_negative() -> Example:
    """Ban et al.'s setup: 50 steps, the same negative from step 0 and from step 5 (neg_start 0.1), side by side."""
    g = Example(
        "## Delayed negative (Ban et al. 2024), toy model\n\n"
        "**Look at:** the two saved images, the same seed and negative: on from step 0 (left) and from step 5 of "
        "50 (`neg_start` 0.1, right). A negative acts late in sampling, so the delayed one keeps the layout of the "
        "picture and still removes the hat.\n\n"
        "Runs offline on the toy concept model.")
    model, vae, c, latent = base(g, {"p": POSITIVE, "n": NEGATIVE})
    for start, name, shown in ((0.0, "undelayed", "negative from step 0"), (0.1, "from_step_5", "from step 5")):
        patched = g.node("NegativeGuidanceCFG", model=model, clip=g.out(model, 1), neg_start=start, **STANDARD)
        save(g, ksampler(g, patched, c["p"], c["n"], latent, steps=50, seed=1), vae, f"negative_guidance/{name}",
             shown)  # before step 5, p is guided against u
    return g


def attention_analysis() -> Example:
    """r_t curves and heatmaps of a first run; its suggested gate start drives the guider of a second run."""
    g = Example(
        "## When does the negative act? r_t and a gate, toy model\n\n"
        "**Look at:** the curves drawn inside *Attention r_t* (hover for values), its r_t plot, heatmaps and "
        "overlay previews, then the second picture.\n\n"
        "*Attention Capture* encodes both prompts (type them there; its positive and negative go to the "
        "sampler) and records each word's attention per step. *Attention r_t* compares each negative word with "
        "its most related positive word: r_t per step, and a suggested gate, the first step where r_t has risen "
        "`gate_fraction` of the way from its start to its peak (on the toy model: step 0–1; see docs/gate.md). "
        "That gate (`gate_start`) is wired into the guider's `neg_start`, so the "
        "second run switches the negative on only from there.\n\n"
        "Runs offline on the toy concept model.")
    model, vae, _, latent = base(g, {})
    captured = g.node("AttentionCapture", model=model, clip=g.out(model, 1), positive_text=POSITIVE,
                      negative_text=NEGATIVE, **CAPTURE)
    p, n = g.out(captured, 2), g.out(captured, 3)  # each prompt typed once, in the capture
    first = ksampler(g, captured, p, n, latent, steps=30, seed=1)
    image = g.node("VAEDecode", samples=first, vae=vae)
    rt = g.node("AttentionRt", capture=g.out(captured, 1), samples=first, filename_prefix="negative_guidance/rt",
                image=image, **RT)
    previews = [g.node("PreviewImage", images=g.out(rt, index)) for index in (3, 4, 6)]  # r_t_plot, heatmaps, overlay
    g.show(previews[0], "first run: r_t and its gate")
    guider = g.node("NegativeGuidanceGuider", model=model, positive=p, negative=n, cfg=7.0, clip=g.out(model, 1),
                    mode="standard", neg_scale=6.0, neg_start=g.out(rt, 2), neg_end=1.0, window_unit="steps",
                    neg_schedule="constant")
    save(g, custom_sample(g, model, guider, latent, steps=30, seed=1), vae, "negative_guidance/gated",
         "second run: negative from the gate")
    return g


def several_negatives() -> Example:
    """Two NegativeTerms with their own windows and weights, summed into the guider's main negative."""
    g = Example(
        "## Several negatives, each with its own window, toy model\n\n"
        "**Look at:** the saved image, and the guider's readout (conditionings per model call: it changes as "
        "the windows open and close).\n\n"
        "The main negative \"legs\" is on throughout; *Negative Guidance Term* nodes add \"hat\" (weight 3, from "
        "20% of the steps) and \"blue\" (weight 2, for the first 60%, on a linear ramp). Their terms are summed, "
        "each with its own weight and window (ConditioningCombine would average them). Runs offline on the toy "
        "concept model.")
    model, vae, c, latent = base(g, {"p": "a circle", "n": "legs", "hat": "hat", "blue": "blue"})
    hat = g.node("NegativeTerm", conditioning=c["hat"], weight=3.0, start=0.2, end=1.0, window_unit="steps",
                 schedule="constant")
    blue = g.node("NegativeTerm", conditioning=c["blue"], weight=2.0, start=0.0, end=0.6, window_unit="steps",
                  schedule="linear", terms=hat)
    guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0,
                    clip=g.out(model, 1), mode="independent", neg_scale=4.0, neg_start=0.0,
                    neg_end=1.0, window_unit="steps", neg_schedule="constant", terms=blue)
    save(g, custom_sample(g, model, guider, latent, steps=20, seed=1), vae, "negative_guidance/several")
    return g


def capture_and_rt(g: Example, model, clip, vae, positive: str, negative: str, samples_of, prefix: str,
                   framed: bool = True):
    """AttentionCapture (``framed`` in the screenshot) → (the caller's sampler: ``samples_of(model, p, n)``) →
    VAEDecode → AttentionRt, with the r_t plot and overlay previewed. Returns the decoded image."""
    captured = g.node("AttentionCapture", model=model, clip=clip, positive_text=positive, negative_text=negative,
                      **CAPTURE)
    if framed:
        g.frame(captured)
    samples = samples_of(captured, g.out(captured, 2), g.out(captured, 3))
    image = g.node("VAEDecode", samples=samples, vae=vae)
    rt = g.node("AttentionRt", capture=g.out(captured, 1), samples=samples, filename_prefix=f"{prefix}_rt",
                image=image, **RT)
    g.show(g.node("PreviewImage", images=g.out(rt, 3)), "r_t per step")  # r_t_plot
    g.node("PreviewImage", images=g.out(rt, 6))  # overlay
    return image, rt


def sdxl_delayed_negative() -> Example:
    """SDXL base 1.0: a standard negative from 10% of the steps, captured: r_t, and where the negative acted."""
    g = Example(
        "## SDXL: a delayed negative, and where it acts\n\n"
        "**Needs** `sd_xl_base_1.0.safetensors` in models/checkpoints.\n\n"
        "**Look at:** the picture, then *Attention r_t*: the r_t curve of each negative word (\"dog\", "
        "\"blurry\"), its `effect_maps` (where the negative changed the prediction, per step) and the overlay.\n\n"
        "*Negative Guidance CFG* gives the KSampler's own negative (mode standard, x̂ = n + cfg·(p − n)) from "
        "10% of the steps on (`neg_start` 0.1, Ban et al. 2024): before that, u (the empty prompt, encoded by the "
        "node from `clip`) stands in for it, so the layout forms undisturbed. *Attention Capture* encodes both "
        "prompts: type them there.")
    loader = g.node("CheckpointLoaderSimple", ckpt_name="sd_xl_base_1.0.safetensors")
    model, clip, vae = loader, g.out(loader, 1), g.out(loader, 2)
    latent = g.node("EmptyLatentImage", width=1024, height=1024, batch_size=1)

    def sample(captured, p, n):
        patched = g.frame(g.node("NegativeGuidanceCFG", model=captured, clip=clip, mode="standard", neg_scale=6.0,
                                 neg_start=0.1, neg_end=1.0, window_unit="steps", neg_schedule="constant"))
        return ksampler(g, patched, p, n, latent, cfg=7.0, steps=25, sampler="dpmpp_2m", scheduler="karras", seed=1)

    image, rt = capture_and_rt(g, model, clip, vae, "a photo of a cat sitting on a red chair next to a window",
                               "dog, blurry", sample, "negative_guidance/sdxl")
    g.node("PreviewImage", images=g.out(rt, 5))  # effect_maps
    g.show(g.node("SaveImage", images=image, filename_prefix="negative_guidance/sdxl"), "the picture", first=True)
    return g


def sd35_independent_scales() -> Example:
    """SD3.5 medium with its three text encoders: eq. 8 through the guider, captured."""
    g = Example(
        "## SD3.5 medium: independent negative scale (eq. 8)\n\n"
        "**Needs** `sd3.5_medium.safetensors` in models/checkpoints and `clip_g.safetensors`, "
        "`clip_l.safetensors`, `t5xxl_fp16.safetensors` in models/text_encoders.\n\n"
        "**Look at:** the picture while you change `neg_scale` alone (x̂ = u + cfg·(p − u) − neg_scale·(n − u): "
        "cfg 4.5, neg_scale 3), and *Attention r_t*: when each negative word acts. SD3 gives every word two sets of "
        "attention columns, CLIP (positions 0–76) and T5 (from 77); a word's map is the sum over both.\n\n"
        "The guider encodes the empty prompt u itself from `clip` and evaluates p, n and u in one batch per model "
        "call (its readout: 3). *Attention Capture* encodes both prompts: type them there.")
    loader = g.node("CheckpointLoaderSimple", ckpt_name="sd3.5_medium.safetensors")
    clip = g.node("TripleCLIPLoader", clip_name1="clip_g.safetensors", clip_name2="clip_l.safetensors",
                  clip_name3="t5xxl_fp16.safetensors")
    latent = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)

    def sample(captured, p, n):
        guider = g.frame(g.node("NegativeGuidanceGuider", model=captured, positive=p, negative=n, cfg=4.5, clip=clip,
                                mode="independent", neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                                neg_schedule="constant"))
        return custom_sample(g, captured, guider, latent, steps=30, sampler="euler", scheduler="sgm_uniform", seed=1)

    image, _ = capture_and_rt(g, loader, clip, g.out(loader, 2),
                              "a painting of a mountain lake at sunset with pine trees and clouds",
                              "people, boats, text", sample, "negative_guidance/sd35")
    g.show(g.node("SaveImage", images=image, filename_prefix="negative_guidance/sd35"), "the picture", first=True)
    return g


def split_loaders(g: Example, unet: str, clip: str, clip_type: str, vae: str) -> tuple:
    """UNETLoader, CLIPLoader and VAELoader of the files a model's template loads apart."""
    return (g.node("UNETLoader", unet_name=unet, weight_dtype="default"),
            g.node("CLIPLoader", clip_name=clip, type=clip_type, device="default"), g.node("VAELoader", vae_name=vae))


def flux_dev_loaders(g: Example) -> tuple:
    """Flux.1 dev's loaders by the file names users have: (MODEL, CLIP, VAE)."""
    unet = g.node("UNETLoader", unet_name="flux1-dev.safetensors", weight_dtype="default")
    clip = g.node("DualCLIPLoader", clip_name1="clip_l.safetensors", clip_name2="t5xxl_fp16.safetensors",
                  type="flux", device="default")
    return unet, clip, g.node("VAELoader", vae_name="ae.safetensors")


def flux_dev_true_cfg() -> Example:
    """Flux.1 dev with true CFG (cfg > 1), the only way it evaluates a negative prompt."""
    g = Example(
        "## Flux.1 dev: a negative needs true CFG (cfg > 1)\n\n"
        "**Needs** `flux1-dev.safetensors` in models/diffusion_models, `clip_l.safetensors` and "
        "`t5xxl_fp16.safetensors` in models/text_encoders, `ae.safetensors` in models/vae.\n\n"
        "Flux.1 dev is guidance-distilled and is usually run at cfg 1, where the KSampler never evaluates the "
        "negative prompt. **A negative needs true CFG: cfg > 1** on the KSampler (2.0 here; mode standard, "
        "x̂ = n + cfg·(p − n)). Each step then evaluates 2 prompts in one batch where cfg 1 evaluates 1, so it "
        "takes about twice as long. Every prompt keeps Flux's built-in distilled guidance (3.5). (Mode "
        "independent applies `neg_scale` even at cfg 1: x̂ = p − neg_scale·(n − u), 3 prompts per call.)\n\n"
        "**Look at:** the picture, and *Attention r_t*: when \"grapes\" and \"watermark\" act (Flux's words are "
        "read through T5, the encoder that feeds its attention). *Attention Capture* encodes both prompts: type "
        "them there.")
    unet, clip, vae = flux_dev_loaders(g)
    latent = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)

    def sample(captured, p, n):
        patched = g.frame(g.node("NegativeGuidanceCFG", model=captured, clip=clip, mode="standard", neg_scale=1.0,
                                 neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant"))
        return ksampler(g, patched, p, n, latent, cfg=2.0, steps=20, sampler="euler", scheduler="simple", seed=1)

    image, _ = capture_and_rt(g, unet, clip, vae, "a bowl of fruit on a wooden table, apples, oranges, soft shadows",
                              "grapes, watermark", sample, "negative_guidance/flux")
    g.show(g.node("SaveImage", images=image, filename_prefix="negative_guidance/flux"), "the picture", first=True)
    return g


def wan21_t2v_negative() -> Example:
    """Wan 2.1 text-to-video 1.3B: a negative with an independent scale, captured per frame, saved as an animation."""
    g = Example(
        "## Wan 2.1 text-to-video 1.3B: a negative on video\n\n"
        "**Needs** `wan2.1_t2v_1.3B_fp16.safetensors` in models/diffusion_models, "
        "`umt5_xxl_fp8_e4m3fn_scaled.safetensors` in models/text_encoders, `wan_2.1_vae.safetensors` in "
        "models/vae.\n\n"
        "**Look at:** the animation (Save Animated WEBP), and *Attention r_t*: when \"blurry\" and \"static\" act "
        "over the 30 steps. A video's maps are kept per frame; r_t scores all frames of a map together and the "
        "pictures show the mean over frames.\n\n"
        "*Negative Guidance CFG* (mode independent: x̂ = u + cfg·(p − u) − neg_scale·(n − u), cfg 6 on the "
        "KSampler, neg_scale 5) encodes the empty prompt u itself from `clip`. *Attention Capture* encodes both "
        "prompts (umT5): type them there. 33 frames at 832×480.")
    unet, clip, vae = split_loaders(g, "wan2.1_t2v_1.3B_fp16.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                    "wan", "wan_2.1_vae.safetensors")
    shifted = g.node("ModelSamplingSD3", model=unet, shift=8.0)
    latent = g.node("EmptyHunyuanLatentVideo", width=832, height=480, length=33, batch_size=1)

    def sample(captured, p, n):
        patched = g.frame(g.node("NegativeGuidanceCFG", model=captured, clip=clip, mode="independent", neg_scale=5.0,
                                 neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant"))
        return ksampler(g, patched, p, n, latent, cfg=6.0, steps=30, sampler="uni_pc", scheduler="simple", seed=1)

    video, _ = capture_and_rt(g, shifted, clip, vae, "an empty street at night in the rain, neon signs, reflections",
                              "blurry, static, people walking", sample, "negative_guidance/wan")
    webp = g.node("SaveAnimatedWEBP", images=video, filename_prefix="negative_guidance/wan", fps=16.0, lossless=False,
                  quality=90, method="default")
    g.show(webp, "frames of the video", first=True)
    return g


def toy_cfg1_attention_negative() -> Example:
    """A distilled-style run at cfg 1 with an attention-space negative from 20% of the steps, on the toy model."""
    g = Example(
        "## A negative at cfg 1: attention space (NAG), toy model\n\n"
        "**Look at:** the two saved images, the same seed at cfg 1: without a negative (left) and with the "
        "attention-space negative \"hat\" from 20% of the steps (right; φ 4, τ 2.5, α 1). At cfg 1 the "
        "KSampler never evaluates a negative prompt; *Attention-Space Negative Term* acts inside the attention "
        "layers instead, Z̃ = Z⁺ + φ·(Z⁺ − Z⁻), normalised and blended (Chen et al. 2025). The log says 1 model "
        "evaluation per step.\n\n"
        "On the toy model the peers' α = 0.25 barely acts; α = 1 (no blend back to Z⁺) removes more than eq. 9 "
        "at cfg 3 does, at half the model evaluations (bench/bench_nag_toy.py). Runs offline on the toy concept "
        "model.")
    model, vae, c, latent = base(g, {"p": POSITIVE, "n": NEGATIVE})
    save(g, ksampler(g, model, c["p"], c["n"], latent, cfg=1.0, steps=20, seed=8), vae,
         "negative_guidance/cfg1_plain", "cfg 1, no negative")
    term = g.node("AttentionNegativeTerm", conditioning=c["n"], **(ATTENTION_TERM | dict(alpha=1.0)))
    patched = g.node("NegativeGuidanceCFG", model=model, clip=g.out(model, 1), neg_start=0.0, terms=term, **STANDARD)
    save(g, ksampler(g, patched, c["p"], c["n"], latent, cfg=1.0, steps=20, seed=8), vae,
         "negative_guidance/cfg1_attention_negative", "cfg 1, attention negative")
    return g


def flux_dev_cfg1_attention_negative() -> Example:
    """Flux.1 dev at cfg 1 (distilled guidance 3.5) with an attention-space negative: 1 model evaluation per step."""
    g = Example(
        "## Flux.1 dev at cfg 1: a negative in attention space (NAG)\n\n"
        "**Needs** `flux1-dev.safetensors` in models/diffusion_models, `clip_l.safetensors` and "
        "`t5xxl_fp16.safetensors` in models/text_encoders, `ae.safetensors` in models/vae.\n\n"
        "The KSampler runs at cfg 1 with Flux's distilled guidance (FluxGuidance 3.5), so ComfyUI never evaluates "
        "the negative prompt. *Attention-Space Negative Term* (φ 4 = the peers' nag_scale 5, τ 2.5, α 0.25) acts "
        "inside the joint attention from 20% of the steps instead: the negative's T5 tokens run as their own text "
        "stream beside the prompt's, the image tokens once. **Look at:** the picture, and the log: 1 model "
        "evaluation per step.")
    unet, clip, vae = flux_dev_loaders(g)
    positive = g.node("FluxGuidance", guidance=3.5, conditioning=g.node(
        "CLIPTextEncode", clip=clip, text="a photograph of a quiet harbour at dawn, fishing boats, soft mist"))
    negative = g.node("CLIPTextEncode", clip=clip, text="people, text, watermark, blurry")
    term = g.frame(g.node("AttentionNegativeTerm", conditioning=negative, **ATTENTION_TERM))
    patched = g.frame(g.node("NegativeGuidanceCFG", model=unet, clip=clip, neg_start=0.0, terms=term, **STANDARD))
    latent = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    samples = ksampler(g, patched, positive, negative, latent, cfg=1.0, steps=20, scheduler="simple", seed=1)
    save(g, samples, vae, "negative_guidance/flux_dev_cfg1", "cfg 1, attention negative")
    return g


def flux2_klein_cfg1_two_attention_negatives() -> Example:
    """Flux.2 Klein 4B (distilled, 4 steps, cfg 1) with two attention-space negatives, each with its own window."""
    g = Example(
        "## Flux.2 Klein 4B at cfg 1: two negatives in attention space, each with its own window\n\n"
        "**Needs** `flux-2-klein-4b.safetensors` in models/diffusion_models, `qwen_3_4b.safetensors` in "
        "models/text_encoders, `flux2-vae.safetensors` in models/vae (the files of ComfyUI's Flux.2 Klein 4B "
        "template).\n\n"
        "Klein 4B distilled samples 4 steps at cfg 1, where ComfyUI never evaluates a negative prompt. Two "
        "*Attention-Space Negative Term* nodes act inside its attention instead, Z̃ = Z⁺ + Σ φᵢ·(Z⁺ − Z⁻ᵢ), "
        "capped at τ·‖Z⁺‖₁ and blended with α (φ 4, τ 2.5, α 0.25; Chen et al. 2025): \"people, a second fox\" "
        "in the window 0–0.5 (steps 1–2 of 4, while the layout forms) and \"blurry, watermark\" in 0.3–1 (steps "
        "2–4, while the details form). At step 2 both act, summed before one normalisation.\n\n"
        "**Look at:** the picture; the guider's readout (at cfg 1, 1 model evaluation per step); and *Attention "
        "r_t*: when \"people\" and \"fox\" act, read from the prompt's image queries over the first negative's "
        "words. *Attention Capture* encodes the prompt and the first negative: type them there.")
    unet, clip, vae = split_loaders(g, "flux-2-klein-4b.safetensors", "qwen_3_4b.safetensors", "flux2",
                                    "flux2-vae.safetensors")
    latent = g.node("EmptyFlux2LatentImage", width=1024, height=1024, batch_size=1)
    details = g.node("CLIPTextEncode", clip=clip, text="blurry, watermark")

    def sample(captured, p, n):
        layout_term = g.frame(g.node("AttentionNegativeTerm", conditioning=n,
                                     **(ATTENTION_TERM | dict(start=0.0, end=0.5))))
        details_term = g.frame(g.node("AttentionNegativeTerm", conditioning=details, terms=layout_term,
                                      **(ATTENTION_TERM | dict(start=0.3, end=1.0))))
        guider = g.node("NegativeGuidanceGuider", model=captured, positive=p, negative=n, cfg=1.0, clip=clip,
                        neg_start=0.0, terms=details_term, **STANDARD)
        sigmas = g.node("Flux2Scheduler", steps=4, width=1024, height=1024)
        return g.node("SamplerCustomAdvanced", noise=g.node("RandomNoise", noise_seed=1), guider=guider,
                      sampler=g.node("KSamplerSelect", sampler_name="euler"), sigmas=sigmas, latent_image=latent)

    image, _ = capture_and_rt(g, unet, clip, vae, "a red fox sitting in a snowy forest at sunrise, soft light",
                              "people, a second fox", sample, "negative_guidance/flux2_klein", framed=False)
    g.show(g.node("SaveImage", images=image, filename_prefix="negative_guidance/flux2_klein"), "the picture",
           first=True)
    return g


def z_image_turbo_cfg1_independent_negative() -> Example:
    """Z-Image Turbo (8 steps, cfg 1): a negative through eq. 8 in a window, captured; attention space is refused."""
    g = Example(
        "## Z-Image Turbo at cfg 1: a negative through eq. 8\n\n"
        "**Needs** `z_image_turbo_bf16.safetensors` in models/diffusion_models, `qwen_3_4b.safetensors` in "
        "models/text_encoders, `ae.safetensors` in models/vae (the files of ComfyUI's Z-Image Turbo template).\n\n"
        "Z-Image Turbo samples 8 steps at cfg 1, where the KSampler never evaluates the negative prompt. "
        "Attention-space negatives are refused on Z-Image (and Lumina 2): its NextDiT runs the text and the "
        "image as one stream, and no ComfyUI hook can add a negative's text to it. So this negative goes through "
        "*Negative Guidance CFG* in mode independent, which acts at cfg 1: x̂ = u + cfg·(p − u) − neg_scale·(n − u) "
        "= p − neg_scale·(n − u) (neg_scale 1, the push of a standard negative at cfg 2), in the window 0–0.5 "
        "(steps 1–4 of 8). Those steps evaluate 3 prompts in one batch: p, n and the empty prompt u, which the "
        "node encodes from `clip`; the later steps evaluate p alone.\n\n"
        "**Look at:** the picture; the readout (conditionings per model call); and *Attention r_t*: when "
        "\"text\" and \"watermark\" act (Z-Image's words are read inside its chat template; the capture needs "
        "ComfyUI v0.33). *Attention Capture* encodes both prompts: type them there.")
    unet, clip, vae = split_loaders(g, "z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "lumina2",
                                    "ae.safetensors")
    shifted = g.node("ModelSamplingAuraFlow", model=unet, shift=3.0)
    latent = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)

    def sample(captured, p, n):
        patched = g.frame(g.node("NegativeGuidanceCFG", model=captured, clip=clip, mode="independent", neg_scale=1.0,
                                 neg_start=0.0, neg_end=0.5, window_unit="steps", neg_schedule="constant"))
        return ksampler(g, patched, p, n, latent, cfg=1.0, steps=8, sampler="res_multistep", scheduler="simple",
                        seed=1)

    image, _ = capture_and_rt(g, shifted, clip, vae, "a street café in Lisbon at noon, tiled walls, a waiter "
                              "carrying coffee", "text, watermark, blurry", sample, "negative_guidance/z_image")
    g.show(g.node("SaveImage", images=image, filename_prefix="negative_guidance/z_image"), "the picture", first=True)
    return g


WAN22_LIGHTX2V = "wan2.2_t2v_lightx2v_4steps_lora_v1.1_{}_noise.safetensors"


def wan22_expert(g: Example, noise: str, clip, term):
    """One Wan 2.2 14B expert ("high" or "low" noise) with its 4-step LoRA and shift, patched to carry ``term``."""
    unet = g.node("UNETLoader", unet_name=f"wan2.2_t2v_{noise}_noise_14B_fp8_scaled.safetensors",
                  weight_dtype="default")
    lora = g.node("LoraLoaderModelOnly", model=unet, lora_name=WAN22_LIGHTX2V.format(noise), strength_model=1.0)
    shifted = g.node("ModelSamplingSD3", model=lora, shift=5.0)
    return g.node("NegativeGuidanceCFG", model=shifted, clip=clip, neg_start=0.0, terms=term, **STANDARD)


def wan22_cfg1_4step_attention_negative() -> Example:
    """Wan 2.2 14B t2v with the lightx2v 4-step LoRAs at cfg 1: one attention-space negative on both experts."""
    g = Example(
        "## Wan 2.2 14B text-to-video, 4 steps at cfg 1: a negative in attention space\n\n"
        "**Needs** `wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors` and "
        "`wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors` in models/diffusion_models, "
        "`wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors` and "
        "`wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors` in models/loras, "
        "`umt5_xxl_fp8_e4m3fn_scaled.safetensors` in models/text_encoders, `wan_2.1_vae.safetensors` in "
        "models/vae (the files of ComfyUI's Wan 2.2 14B text-to-video template, its 4-step LoRA group).\n\n"
        "The lightx2v LoRAs distil Wan 2.2 to 4 steps at cfg 1: the high-noise expert samples steps 1–2, the "
        "low-noise expert steps 3–4 (two KSamplerAdvanced). At cfg 1 ComfyUI never evaluates the negative prompt. "
        "One *Attention-Space Negative Term* (\"static, blurry, subtitles, watermark\"; φ 4, τ 2.5, α 0.25) joins "
        "both experts through their *Negative Guidance CFG* patches and acts inside their attention, "
        "Z̃ = Z⁺ + φ·(Z⁺ − Z⁻), normalised and blended (Chen et al. 2025). Its window (0–1: the whole run) is "
        "in percent of ComfyUI's denoising schedule (window_unit percent), which both samplers share, so a "
        "narrower window keeps its place across the split; in steps, each sampler would count its own 2 steps.\n\n"
        "**Look at:** the animation, and the log of each sampler: 1 model evaluation per step. 81 frames at "
        "640×640.")
    clip = g.node("CLIPLoader", clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan", device="default")
    vae = g.node("VAELoader", vae_name="wan_2.1_vae.safetensors")
    positive = g.node("CLIPTextEncode", clip=clip, text="a paper boat drifting down a rain gutter, close-up, "
                                                        "ripples, evening light")
    negative = g.node("CLIPTextEncode", clip=clip, text="static, blurry, subtitles, watermark")
    term = g.frame(g.node("AttentionNegativeTerm", conditioning=negative,
                          **(ATTENTION_TERM | dict(start=0.0, window_unit="percent"))))
    high = g.frame(wan22_expert(g, "high", clip, term))  # the low-noise expert's patch is the same, below it
    low = wan22_expert(g, "low", clip, term)
    latent = g.node("EmptyHunyuanLatentVideo", width=640, height=640, length=81, batch_size=1)
    split = dict(noise_seed=1, steps=4, cfg=1.0, sampler_name="euler", scheduler="simple")
    noisy = g.node("KSamplerAdvanced", model=high, positive=positive, negative=negative, latent_image=latent,
                   add_noise="enable", start_at_step=0, end_at_step=2, return_with_leftover_noise="enable", **split)
    samples = g.node("KSamplerAdvanced", model=low, positive=positive, negative=negative, latent_image=noisy,
                     add_noise="disable", start_at_step=2, end_at_step=4, return_with_leftover_noise="disable",
                     **split)
    video = g.node("VAEDecode", samples=samples, vae=vae)
    g.show(g.node("SaveAnimatedWEBP", images=video, filename_prefix="negative_guidance/wan22", fps=16.0,
                  lossless=False, quality=90, method="default"), "frames of the video")
    return g


LTX2_CHECKPOINT = "ltx-2-19b-distilled-fp8.safetensors"  # the model, its VAEs and its text projection
LTX2_SIGMAS = "1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0"  # the distilled model's 8 steps


def ltx2_cfg1_video_and_audio_negatives() -> Example:
    """LTX-2 distilled (8 steps, cfg 1): a video negative and an audio negative in attention space, each in its own
    window, the video's captured for r_t."""
    g = Example(
        "## LTX-2 at cfg 1: a negative for the video and one for the audio\n\n"
        f"**Needs** `{LTX2_CHECKPOINT}` in models/checkpoints (the model, its video and audio VAEs) and "
        "`gemma_3_12B_it_fp4_mixed.safetensors` in models/text_encoders (the files of ComfyUI's LTX-2 "
        "templates).\n\n"
        "LTX-2 distilled samples its video and its audio together in 8 steps at cfg 1, where ComfyUI never "
        "evaluates a negative prompt. LTX-2 reads the prompt twice, in a video and an audio cross-attention. Two "
        "*Attention-Space Negative Term* nodes act there instead (Chen et al. 2025: Z̃ = Z⁺ + φ·(Z⁺ − Z⁻), capped "
        "at τ·‖Z⁺‖₁ and blended with α): \"blurry, distorted hands, static\" on the video stream from the first "
        "step, and \"music, background noise\" on the audio stream from 25% of the steps (their input "
        "`stream`). Each stream's negatives share its normalisation; neither touches the other stream.\n\n"
        "**Look at:** the frames (Save Animated WEBP) and the audio (Save Audio); the guider's readout (1 model "
        "evaluation per step); and *Attention r_t*: when \"blurry\" and \"hands\" act on the video, per frame. "
        "*Attention Capture* encodes the prompt and the video negative: type them there. 97 frames at 768×512, "
        "25 fps.")
    checkpoint = g.node("CheckpointLoaderSimple", ckpt_name=LTX2_CHECKPOINT)
    clip = g.node("LTXAVTextEncoderLoader", text_encoder="gemma_3_12B_it_fp4_mixed.safetensors",
                  ckpt_name=LTX2_CHECKPOINT, device="default")
    audio_vae = g.node("LTXVAudioVAELoader", ckpt_name=LTX2_CHECKPOINT)
    video = g.node("EmptyLTXVLatentVideo", width=768, height=512, length=97, batch_size=1)
    audio = g.node("LTXVEmptyLatentAudio", frames_number=97, frame_rate=25.0, batch_size=1, audio_vae=audio_vae)
    latent = g.node("LTXVConcatAVLatent", video_latent=video, audio_latent=audio)
    sound = g.node("CLIPTextEncode", clip=clip, text="music, background noise")
    captured = g.node("AttentionCapture", model=g.out(checkpoint, 0), clip=clip,
                      positive_text="a street musician tunes a violin under a bridge, rain, people passing by",
                      negative_text="blurry, distorted hands, static", **CAPTURE)
    conditioned = g.node("LTXVConditioning", positive=g.out(captured, 2), negative=g.out(captured, 3),
                         frame_rate=25.0)
    video_term = g.frame(g.node("AttentionNegativeTerm", conditioning=g.out(conditioned, 1), stream="video",
                                **ATTENTION_TERM | dict(start=0.0)))
    audio_term = g.frame(g.node("AttentionNegativeTerm", conditioning=sound, stream="audio", terms=video_term,
                                **ATTENTION_TERM | dict(start=0.25)))
    guider = g.node("NegativeGuidanceGuider", model=captured, positive=g.out(conditioned, 0),
                    negative=g.out(conditioned, 1), cfg=1.0, clip=clip, neg_start=0.0, terms=audio_term, **STANDARD)
    samples = g.node("SamplerCustomAdvanced", noise=g.node("RandomNoise", noise_seed=1), guider=guider,
                     sampler=g.node("KSamplerSelect", sampler_name="euler"),
                     sigmas=g.node("ManualSigmas", sigmas=LTX2_SIGMAS), latent_image=latent)
    separated = g.node("LTXVSeparateAVLatent", av_latent=samples)
    frames = g.node("VAEDecode", samples=g.out(separated, 0), vae=g.out(checkpoint, 2))
    g.show(g.node("SaveAnimatedWEBP", images=frames, filename_prefix="negative_guidance/ltx2", fps=25.0,
                  lossless=False, quality=90, method="default"), "frames of the video")
    g.node("SaveAudio", audio=g.node("LTXVAudioVAEDecode", samples=g.out(separated, 1), audio_vae=audio_vae),
           filename_prefix="negative_guidance/ltx2")
    rt = g.node("AttentionRt", capture=g.out(captured, 1), samples=samples, filename_prefix="negative_guidance/ltx2_rt",
                image=frames, **RT)
    g.show(g.node("PreviewImage", images=g.out(rt, 3)), "r_t per step")
    return g


SCREENSHOT = "the workflow, as ComfyUI draws it"


def needs(models: str) -> tuple[str, str]:
    """The caption of an example that needs real models: its thumbnail is a screenshot of the workflow."""
    return f"needs {models}", SCREENSHOT


TOY = ("toy concept model (ships with the pack)", "a real run of this example")
EXAMPLES = {
    "1_standard_negative_eq9": Spec(standard_negative, None, TOY),
    "2_independent_scales_eq8": Spec(independent_scales, None, TOY),
    "3_delayed_negative_ban_et_al": Spec(delayed_negative, None, TOY),
    "4_attention_r_t_and_gate": Spec(attention_analysis, None, TOY),
    "5_several_negatives_with_windows": Spec(several_negatives, None, TOY),
    "6_sdxl_delayed_negative_r_t": Spec(sdxl_delayed_negative, "sdxl",
                                        needs("SDXL base 1.0")),
    "7_sd35_medium_independent_scales_eq8": Spec(sd35_independent_scales, "sd3",
                                                 needs("SD3.5 medium")),
    "8_flux_dev_true_cfg_negative": Spec(flux_dev_true_cfg, "flux",
                                         needs("Flux.1 dev")),
    "9_wan21_t2v_1_3b_negative_video": Spec(wan21_t2v_negative, "wan21",
                                            needs("Wan 2.1 t2v 1.3B")),
    "10_cfg1_attention_negative": Spec(toy_cfg1_attention_negative, None, TOY),
    "11_flux_dev_cfg1_attention_negative": Spec(flux_dev_cfg1_attention_negative, "flux",
                                                needs("Flux.1 dev")),
    "12_flux2_klein_cfg1_two_attention_negatives": Spec(flux2_klein_cfg1_two_attention_negatives, "flux2_klein",
                                                        needs("Flux.2 Klein 4B")),
    "13_z_image_turbo_cfg1_independent_negative": Spec(z_image_turbo_cfg1_independent_negative, "z_image",
                                                       needs("Z-Image Turbo")),
    "14_wan22_t2v_14b_cfg1_4step_attention_negative": Spec(wan22_cfg1_4step_attention_negative, "wan21",
                                                           needs("Wan 2.2 t2v 14B, 4-step LoRAs")),
    "15_ltx2_cfg1_video_and_audio_negatives": Spec(ltx2_cfg1_video_and_audio_negatives, "ltxav",
                                                   needs("LTX-2 19B distilled")),
}


OUT = harness.PACK_ROOT / "example_workflows"


READOUTS = ("NegativeGuidanceCFG", "NegativeGuidanceGuider")  # the nodes whose evaluations readout (web/js) spills
READOUT_ROOM = 40  # graph units more below each: the readout's text (up to 7 lines) runs some 60 below its node, to
# the source badge over the title of the node workflows.to_ui stacks under it in its column, without this room


def room_for_readouts(ui: dict) -> dict:
    """Every node below a READOUTS node in its column moved down READOUT_ROOM, once per such node above it. The
    workflow, changed."""
    readouts = [node["pos"] for node in ui["nodes"] if node["type"] in READOUTS]
    for node in ui["nodes"]:
        x, y = node["pos"]
        node["pos"] = [x, y + READOUT_ROOM * sum(x == left and y > top for left, top in readouts)]
    return ui


def workflow(name: str, info) -> dict:
    """The UI-format workflow of an example, note included, with room under each readout."""
    import workflows

    example = EXAMPLES[name].build()
    return room_for_readouts(workflows.to_ui(example.prompt, info, notes=[example.note]))


LOADER_OUTPUTS = {  # loader class → where each of its outputs comes from on NegativeGuidanceTestTinyFamily
    "CheckpointLoaderSimple": ["MODEL", "CLIP", "VAE"],
    "UNETLoader": ["MODEL"],
    "CLIPLoader": ["CLIP"],
    "DualCLIPLoader": ["CLIP"],
    "TripleCLIPLoader": ["CLIP"],
    "VAELoader": ["VAE"],
    "LTXAVTextEncoderLoader": ["CLIP"],
}
BYPASSED = {"LoraLoaderModelOnly": "model"}  # loader → its input that the tests pass on (they have no LoRA file)
DROPPED = ("LTXVAudioVAELoader", "LTXVAudioVAEDecode", "SaveAudio")  # LTX-2's audio VAE, which the tests lack
SUBSTITUTES = {"LTXVEmptyLatentAudio": ("NegativeGuidanceTestTinyAudioLatent", ("batch_size",))}  # (node, inputs)
SMALL = {"EmptyLatentImage": dict(width=64, height=64), "EmptySD3LatentImage": dict(width=64, height=64),
         "EmptyFlux2LatentImage": dict(width=64, height=64), "Flux2Scheduler": dict(width=64, height=64),
         "EmptyHunyuanLatentVideo": dict(width=64, height=64, length=5),
         "EmptyLTXVLatentVideo": dict(width=64, height=64, length=9)}  # 64×64: the tiny models' small latents
STEPPED = ("KSampler", "BasicScheduler", "Flux2Scheduler")  # KSamplerAdvanced keeps its steps: its split needs them
TEST_STEPS = 4


def bypassed(prompt: dict) -> dict:
    """The prompt without its BYPASSED nodes (LoRA loaders): what they fed takes what they were given, as the
    frontend's bypass does. A new prompt."""
    passed = {node_id: node["inputs"][BYPASSED[node["class_type"]]] for node_id, node in prompt.items()
              if node["class_type"] in BYPASSED}

    def source(value):
        while isinstance(value, list) and value[0] in passed:
            value = passed[value[0]]
        return value

    return {node_id: {**node, "inputs": {name: source(value) for name, value in node["inputs"].items()}}
            for node_id, node in prompt.items() if node_id not in passed}


def on_test_models(prompt: dict, family: str | None = None) -> dict:
    """The same prompt on tiny seeded models (tests only): every loader becomes
    NegativeGuidanceTestTinyFamily of ``family`` (None: NegativeGuidanceTestTinySD1, the SD1-shaped one), its MODEL,
    CLIP and VAE wired where the loader's were; LoRA loaders are bypassed; LTX-2's audio VAE and what needs it are
    left out, its empty audio latent made without it; latents 64×64 (video: 5 frames, LTX-2's 9); samplers 4 steps.
    A new prompt."""
    prompt = {node_id: node for node_id, node in bypassed(json.loads(json.dumps(prompt))).items()
              if node["class_type"] not in DROPPED}
    loaders = {node_id: LOADER_OUTPUTS[node["class_type"]] for node_id, node in prompt.items()
               if node["class_type"] in LOADER_OUTPUTS}
    for node_id, node in prompt.items():
        kind = node["class_type"]
        if kind in SUBSTITUTES:
            node.update(class_type=SUBSTITUTES[kind][0], inputs={k: node["inputs"][k] for k in SUBSTITUTES[kind][1]})
        if node_id in loaders and family is None:
            node.update(class_type="NegativeGuidanceTestTinySD1", inputs=dict(seed=0))
        elif node_id in loaders:
            node.update(class_type="NegativeGuidanceTestTinyFamily", inputs=dict(family=family, seed=0, dtype="fp32"))
        node["inputs"].update(SMALL.get(kind, {}))
        if kind in STEPPED:
            node["inputs"]["steps"] = TEST_STEPS
        for name, value in node["inputs"].items():
            if isinstance(value, list) and value[0] in loaders:
                node["inputs"][name] = [value[0], OUTPUT_NAMES[loaders[value[0]][value[1]]]]
    return prompt


def test_prompt(name: str, info) -> dict:
    """The API form of an example's UI workflow, as the tests run it: toy examples as shipped, the others on the
    tiny model of their family."""
    import workflows

    prompt = workflows.to_api(workflow(name, info), info)
    family = EXAMPLES[name].family
    return prompt if family is None else on_test_models(prompt, family)


def chosen(options: argparse.Namespace) -> list[str]:
    """The examples the command line picks."""
    return [name for name, spec in EXAMPLES.items()
            if (not options.names or name.startswith(tuple(options.names)))
            and not (options.toy and spec.family) and not (options.real and not spec.family)]


def save_thumbnail(name: str, picture) -> None:
    picture.save(OUT / f"{name}.jpg", quality=85, optimize=True)
    print("wrote", OUT / f"{name}.jpg", flush=True)


def run_thumbnail(name: str):
    """A toy example's thumbnail: the images of a real run of it."""
    import thumbnails
    import workflows

    spec = EXAMPLES[name]
    history = harness.execute(test_prompt(name, workflows.node_info))
    example = spec.build()
    return thumbnails.thumbnail(thumbnails.images_of(history, example.shown), list(spec.label), example.names)


def save_screenshot_thumbnails(names: list[str]) -> None:
    """The thumbnails of the examples that need real models: their workflows as the frontend draws them, framed on
    the nodes each example frames, above the caption."""
    import screenshots
    import thumbnails
    import workflows

    shipped = {name: workflow(name, workflows.node_info) for name in names}
    with screenshots.frontend([workflows.to_api(ui, workflows.node_info) for ui in shipped.values()]) as photograph:
        for name in names:
            spec = EXAMPLES[name]
            shot = photograph(shipped[name], spec.build().framed, thumbnails.single_picture_size(len(spec.label)))
            save_thumbnail(name, thumbnails.thumbnail([shot], list(spec.label)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="only the examples whose names start with one of these")
    parser.add_argument("--json", action="store_true", help="write the JSON only, no runs and no screenshots")
    parser.add_argument("--toy", action="store_true", help="only the examples that run on the toy model")
    parser.add_argument("--real", action="store_true", help="only the examples that need real models")
    options = parser.parse_args()

    import comfy_helpers
    import workflows

    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="examples_")))
    names = chosen(options)
    for name in names:
        ui = workflow(name, workflows.node_info)
        (OUT / f"{name}.json").write_text(json.dumps(ui, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print("wrote", OUT / f"{name}.json", flush=True)
    if options.json:
        return
    for name in (name for name in names if not EXAMPLES[name].family):
        save_thumbnail(name, run_thumbnail(name))
    if real := [name for name in names if EXAMPLES[name].family]:
        save_screenshot_thumbnails(real)


if __name__ == "__main__":
    main()
