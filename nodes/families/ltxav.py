"""LTX-2 (LTXAV): a video and an audio latent sampled together. Every block makes, in order: the video's
self-attention, its cross-attention to the video text, the audio's self-attention, its cross-attention to the audio
text, then audio→video and video→audio attention (comfy/ldm/lightricks/av_model.py ``BasicAVTransformerBlock``).
Spatio-temporal guidance (LTXVSpatioTemporalGuidance) turns a block's two self-attentions into value pass-throughs
that make no attention call, so there each text call comes first in its stream.

Text: Gemma 3 tokens, left-padded to 1024 by the tokenizer; the text encoder keeps the prompt (BOS first) and drops
the padding (text_encoders/lt.py). The model's two connectors (``preprocess_text_embeds``, which ComfyUI runs once per
run in ``extra_conds``) turn it into a video and an audio context, the prompt's tokens followed by learnable
registers up to 1024 tokens (``context_length``), which belong to no word.

Attention-space negatives: each negative's context goes through the connectors once per sampling run, exactly as
ComfyUI's ``extra_conds`` passes the prompt (``negative_context``); each forward projects its video and audio halves
as ``_prepare_context`` projects the prompt's, and appends them to every block's video and audio contexts, for the
negatives of each stream (an AttentionNegativeTerm's ``stream``: video, audio or both). The override guides each
text call with its stream's negatives (nodes/nag.py ``guide_cross``).

The capture reads the video's text call: maps per frame over the video's tokens (1×1×1 patches), of the first of
the latents the sampler packs into one (``PACKED``); the registers take their share of the attention and belong to no
word. Keyframe guides (LTXVAddGuide) are refused before sampling, by the capture and the negatives alike.
"""

from __future__ import annotations

import math

import torch

from comfy.ldm.lightricks.av_model import LTXAVModel

from ...attention.store import LayerId
from . import joint, ltxv
from .text import PromptTokens, encoded, rows_of

NAME = "LTX-2 (LTXAV)"
KEY = "gemma3_12b"
CONTEXTS = {"v_context": "video", "a_context": "audio"}  # a block's text contexts, by the stream each carries
MIN_CONTEXT, REGISTERS = 1024, 128  # the connectors pad a context with registers to 1024 tokens, or a multiple of 128
PACKED = True  # the sampler packs the video and audio latents into one: the capture maps the first, the video
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, LTXAVModel)


def text(clip, prompt: str) -> PromptTokens:
    """The prompt's Gemma 3 tokens as the text encoder keeps them: the row less its left padding."""
    row = rows_of(clip, prompt, KEY)[0]
    pad = clip.tokenizer.gemma3_12b.pad_token
    start = next((j for j, (token, *_) in enumerate(row) if token != pad), len(row))
    return PromptTokens([encoded(clip, prompt, KEY, [row[start:]])], len(row) - start)


def context_length(tokens: int) -> int:
    """The tokens of a context the connectors made from a prompt of ``tokens``: the prompt's, then registers."""
    return math.ceil(max(MIN_CONTEXT, tokens) / REGISTERS) * REGISTERS


def negative_context(conditioning: list, guider) -> torch.Tensor:
    """A negative's video and audio contexts, side by side in the channels, through the model's connectors on its
    device and dtype, as ``extra_conds`` makes the prompt's."""
    context, extra, model_patcher = conditioning[0][0], conditioning[0][1], guider.model_patcher
    model = model_patcher.model
    return model.diffusion_model.preprocess_text_embeds(
        context.to(model_patcher.load_device, model.get_dtype_inference()),
        unprocessed=extra.get("unprocessed_ltxav_embeds", False))


capture_refusal = ltxv.keyframe_refusal  # LTXVAddGuide's keyframes change the video's tokens, as on LTXV


def negatives_refusal(diffusion_model, entries) -> str | None:
    """Why the negatives cannot be exact beside these ``entries``: keyframe guides, or a text mask, which the two
    streams' contexts would extend by different negatives."""
    if (why := capture_refusal(diffusion_model, entries)) is not None:
        return why
    if any(entry.get("attention_mask") is not None for entry in entries):
        return ("this LTX-2 conditioning carries a text attention mask, which the video and audio contexts would "
                "have to extend by different negatives. Encode the prompts with LTX-2's own text encoder")
    return None


def sampled_streams(shapes: list[tuple[int, ...]]) -> set[str]:
    """The streams a run of latents of these shapes samples: the video, and the audio where a second latent with
    frames is packed beside it (the model skips an empty one)."""
    return {"video", "audio"} if len(shapes) > 1 and math.prod(shapes[1]) > 0 else {"video"}


def blocks(diffusion_model) -> list[tuple[str, int]]:
    return [("double_block", i) for i in range(len(diffusion_model.transformer_blocks))]


def token_grid(latent_shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(latent_shape[-3:])


def calls(block: tuple[str, int], options: dict) -> dict[int, str]:
    """The block's two text calls: each stream's self-attention, then its text call (the self-attentions make no
    call under spatio-temporal guidance); the audio's after the video's."""
    own = 0 if options.get("stg_skip_self_attn", False) else 1  # a stream's calls before its text call
    found = {own: "v_context"} if options.get("run_vx", True) else {}
    if options.get("run_ax", True):
        found[own + (own + 1 if found else 0)] = "a_context"  # after the video's own calls
    return found


def dit(diffusion_model) -> joint.Dit:
    before = getattr(diffusion_model, "caption_proj_before_connector", False)  # as _prepare_context reads it
    video_dim, audio_dim = diffusion_model.inner_dim, diffusion_model.audio_inner_dim
    widths = [video_dim, audio_dim] if before else [diffusion_model.caption_channels] * 2

    def locate(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> joint.Block:
        found = {key: i for i, key in calls((kind, index), args["transformer_options"]).items()}
        if "v_context" not in found:
            raise RuntimeError("AttentionCapture: a node set LTX-2's run_vx to False, so the video's text attention, "
                               "which the capture reads, does not run. Remove that node to capture")
        return joint.Block(LayerId((kind, index), 0, grid), found["v_context"], args["img"][0].shape[1], slice(None),
                           slice(None), cross=True)

    def embed(contexts, args):
        texts = []
        for context in contexts:
            video, audio = torch.split(context, widths, dim=-1)
            if not before:
                video = diffusion_model.caption_projection(video)
                audio = diffusion_model.audio_caption_projection(audio)
            texts.append({"v_context": video, "a_context": audio})
        return texts

    return joint.Dit(blocks(diffusion_model), locate, embed, token_grid=token_grid, keys=("img", "v_context"),
                     cross=True, calls=calls, streams=CONTEXTS)


layers, install = joint.site(dit)
