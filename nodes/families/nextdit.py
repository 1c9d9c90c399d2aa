"""Lumina 2 and Z-Image (NextDiT): a caption refiner and a noise refiner, then layers that attend over one stream
[caption, image]. The capture only: attention-space negatives cannot join it (``NEGATIVES_REFUSED``).

Text: Lumina 2's Gemma 2 tokens (BOS, no template); Z-Image's Qwen3-4B tokens of its chat template, which the context
keeps whole (as Flux.2 Klein's). Z-Image pads the caption and the image to multiples of 32 tokens with learned pad
tokens (``pad_tokens_multiple``): the caption's pads are keys the layers attend to, and belong to no word. Image
queries: the latent in 2×2 patches, right after the caption. Hook: the attention override, which tells a main layer's
call by the ``block_index`` and ``block_type`` "double" that ``_forward`` sets after the refiners ran; the layers
have no ``dit`` replace.
"""

from __future__ import annotations

import math

from comfy.ldm.lumina.model import NextDiT

from ...attention.store import LayerId
from ..contract import CALL, LATENT
from . import joint
from .text import PromptTokens, UnsupportedText, chat_prompt, single_encoder

NAME = "Lumina 2 / Z-Image (NextDiT)"
NEGATIVES_REFUSED = ("Lumina 2 and Z-Image (NextDiT) have no dit block replace: a negative's text cannot join their "
                     "stream without moving the image tokens' positions, which are numbered after the caption's")


def matches(diffusion_model) -> bool:
    """NextDiT itself; Z-Image's pixel-space model (NextDiTPixelSpace) is refused (families.REFUSED)."""
    return type(diffusion_model) is NextDiT


CAPTION_PAD = 32  # Z-Image pads a caption to a multiple of 32 tokens of its own


def text(clip, prompt: str) -> PromptTokens:
    """Z-Image's chat-templated Qwen3 prompt, or Lumina 2's Gemma 2 (NewBie's and the Gemma 3 Lumina's are not
    mapped yet)."""
    if getattr(clip.tokenizer, "qwen3_4b", None) is not None:
        return chat_prompt(clip, prompt, "qwen3_4b")
    if getattr(clip.tokenizer, "gemma2_2b", None) is not None:
        return single_encoder(clip, prompt, "gemma2_2b")
    raise UnsupportedText(f"its tokenizer {type(clip.tokenizer).__name__} is not Z-Image's Qwen3 nor Lumina 2's "
                          "Gemma 2 (NewBie's and Gemma 3 Lumina's text is not mapped yet)")


def padded(tokens: int, multiple: int | None) -> int:
    """``tokens`` rounded up to a multiple, as the model's pad_zimage pads a caption or an image."""
    return tokens if not multiple else math.ceil(tokens / multiple) * multiple


def context_length(tokens: int) -> int:
    """The tokens of a caption of ``tokens`` as Z-Image pads it (its pads belong to no word: the capture's maps)."""
    return padded(tokens, CAPTION_PAD)


def layers(diffusion_model, latent_shape: tuple[int, ...]) -> list[LayerId]:
    grid = joint.image_grid(latent_shape)
    return [LayerId(("double_block", i), 0, grid) for i in range(len(diffusion_model.layers))]


def capture_refusal(diffusion_model, entries) -> str | None:
    """Why the capture cannot map a run whose conditioning ``entries`` hold reference latents (Z-Image Omni), which
    lay out other captions and images before the prompt's."""
    if any(entry.get("reference_latents") for entry in entries):
        return ("NextDiT's reference latents (Z-Image Omni) put their own captions and images in the stream before "
                "the prompt's, which the capture does not map. Capture a run without reference latents")
    return None


def make_override(previous, multiple: int | None):
    """The site's optimized_attention_override: a main layer's call recorded at the capture's steps; every call
    passes through to the earlier override or ComfyUI's function unchanged."""

    def override(func, *args, **kwargs):
        out = joint.unchanged(func, previous, args, kwargs)
        options = kwargs.get("transformer_options") or {}
        call = options.get(CALL)
        if call is None or options.get("block_type") != "double" or "block_index" not in options:
            return out
        q, k, heads, heads_split = joint.attention_args(args, kwargs)
        grid = joint.image_grid(options.get(LATENT) or call.latent_shape)
        length = q.shape[2 if heads_split else 1]
        caption = length - padded(math.prod(grid), multiple)
        if caption <= 0 or joint.attention_mask(args, kwargs) is not None:  # ComfyUI's TODO: cap_mask = None
            raise RuntimeError(f"{call.recorder.node}: NextDiT layer {options['block_index']} attended over "
                               f"{length} tokens for {math.prod(grid)} image tokens, or with a mask: this ComfyUI "
                               "lays out NextDiT's stream differently from the one the capture knows")
        layer = LayerId(("double_block", options["block_index"]), 0, grid)
        block = joint.Block(layer, 0, length, slice(caption, caption + math.prod(grid)), slice(0, caption))
        joint.record(joint.BlockRun(block, call), options, q, k, heads, heads_split, None)
        return out

    override.__wrapped__ = previous
    return override


def install(patched) -> dict:
    """The site on ``patched``: the override, chained over the one before."""
    options = patched.model_options.setdefault("transformer_options", {})
    multiple = getattr(patched.get_model_object("diffusion_model"), "pad_tokens_multiple", None)
    installed = {joint.OVERRIDE: make_override(options.get(joint.OVERRIDE), multiple)}
    patched.model_options["transformer_options"] = {**options, joint.OVERRIDE: installed[joint.OVERRIDE]}
    return installed


def installed_hooks(model_options: dict) -> dict:
    return {joint.OVERRIDE: model_options.get("transformer_options", {}).get(joint.OVERRIDE)}
