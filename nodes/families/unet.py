"""SD1.x, SD2.x and SDXL: UNets whose cross-attention (attn2) reads CLIP tokens.

Text: CLIP chunks of 77 tokens (BOS, 75 pieces, EOS or padding) laid end to end; SDXL's clip_l and clip_g share
positions, so clip_l's tokens name the columns.

The attention site (nodes/site.py): an attn2 replace on every cross-attention block, chained over any replace
installed before, and one ``attn2_patch``. With attention-space negatives active the patch appends their contexts to
the layer's context (along the tokens), so that the layer's own to_k/to_v project them, and the replace splits k/v
back into K⁺ and each K⁻ᵢ and guides (nodes/nag.py ``guide_cross``): Z⁻ᵢ = Attn(Q, K⁻ᵢ, V⁻ᵢ), one more attention per
cross-attention layer. Without them it returns ComfyUI's own attention (or the earlier replace's). The capture's maps
of each text are computed beside it from the same q and k.
"""

from __future__ import annotations

import math

import torch

import comfy.ldm.modules.attention as comfy_attention
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, UNetModel

from ...attention.store import LayerId
from ..contract import CALL
from ..nag import active, guide_cross
from ..site import whole
from .text import PromptTokens, UnsupportedText, single_encoder

NAME = "SD1.x / SD2.x / SDXL (UNet)"
CLIP_KEYS = ("l", "h", "g")  # SD1 and SDXL: clip_l; SD2: clip_h


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, UNetModel)


def text(clip, prompt: str) -> PromptTokens:
    key = next((key for key in CLIP_KEYS if hasattr(clip.tokenizer, f"clip_{key}")), None)
    if key is None:
        raise UnsupportedText(f"its tokenizer {type(clip.tokenizer).__name__} has no CLIP text encoder (l, h or g)")
    return single_encoder(clip, prompt, key)


def layers(diffusion_model, latent_shape: tuple[int, ...]) -> list[LayerId]:
    """Every cross-attention layer of the UNet and its resolution for a latent of ``latent_shape``.

    Input blocks halve the size at each Downsample (a stride-2 conv: ⌈h/2⌉); output block i runs at the size of the
    skip it concatenates, that of input block N − 1 − i; the middle block at the deepest size.
    """
    found, skips, size = [], [], tuple(latent_shape[-2:])

    def add(block_id: tuple[str, int], block) -> None:
        for m in block.modules():
            if isinstance(m, SpatialTransformer):
                found.extend(LayerId(block_id, i, size) for i in range(len(m.transformer_blocks)))

    for i, block in enumerate(diffusion_model.input_blocks):
        if any(isinstance(m, Downsample) for m in block.modules()):
            size = tuple(math.ceil(s / 2) for s in size)
        add(("input", i), block)
        skips.append(size)
    add(("middle", 0), diffusion_model.middle_block)
    for i, block in enumerate(diffusion_model.output_blocks):
        size = skips.pop()
        add(("output", i), block)
    return found


def replace_keys(patched) -> tuple[list, dict]:
    """The attn2 replace keys to hook: every cross-attention block, and every (block, index) replace already there
    (it wins over the block's own in ComfyUI, so both are wrapped); and the replaces in place, by key."""
    blocks = list(dict.fromkeys(layer.block for layer in layers(patched.get_model_object("diffusion_model"), (1, 1))))
    replaces = patched.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
    existing = [key for key in replaces if tuple(key[:2]) in blocks and len(key) == 3]
    return [*blocks, *existing], replaces


def install(patched) -> dict:
    """The site on ``patched``: the attn2_patch that appends the active negatives' contexts, and an attn2 replace on
    every cross-attention block, chained over the replace there before; returns the replaces by key, to check at
    sampling."""
    keys, replaces = replace_keys(patched)
    patched.set_model_attn2_patch(make_append_negatives({tuple(key[:2]) for key in keys}))
    installed = {}
    for key in keys:
        installed[key] = make_attn2(replaces.get(key))
        patched.set_model_attn2_replace(installed[key], *key)
    return {("attn2", key): fn for key, fn in installed.items()}


def installed_hooks(model_options: dict) -> dict:
    """The attn2 replaces in ``model_options``, keyed as ``install`` returns them."""
    replaces = model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
    return {("attn2", key): fn for key, fn in replaces.items()}


def attention_below(previous):
    """``attend(q, k, v, extra)``: the earlier attn2 replace, or what CrossAttention.forward computes (an attention
    override such as a sage or flash selector included)."""

    def attend(q, k, v, extra):
        if previous is not None:
            return previous(q, k, v, extra)
        return comfy_attention.optimized_attention(q, k, v, extra["n_heads"], attn_precision=extra["attn_precision"],
                                                   transformer_options=extra)

    return attend


def make_attn2(previous):
    """The site's attn2 replace ``fn(q, k, v, extra)``: the layer's own attention (or the earlier replace's) or, with
    negatives, the guided one (nodes/nag.py ``guide_cross``); the capture's maps of each text recorded beside it."""
    attend = attention_below(previous)

    def attn2(q, k, v, extra):
        call, nag = extra.get(CALL), active(extra)
        grid = tuple(extra["activations_shape"][-2:])
        if nag is not None:  # the effect map is recorded from forwards over the whole latent only
            out = guide_cross(attend, q, k, v, extra, nag, grid if whole(extra, nag.latent_shape) else None)
        else:
            out = attend(q, k, v, extra)
        if call is not None:
            layer = LayerId(tuple(extra["block"]), extra.get("block_index", 0), grid)
            texts = [(None, slice(None))] if nag is None else nag.spans(k.shape[1] - sum(nag.tokens))
            call.record_texts(layer, extra, q, k, extra["n_heads"],
                              [(term, slice(None), keys) for term, keys in texts])
        return out

    attn2.__wrapped__ = previous
    return attn2


def make_append_negatives(hooked: set):
    """An attn2_patch: with negatives active, the layer's context (and value) become [ctx⁺, ctx⁻₁ … ctx⁻ₖ] along the
    tokens, only in blocks whose attn2 replace splits them again (``hooked``)."""

    def append_negatives(n, context, value, extra):
        nag = active(extra)
        if nag is None or tuple(extra.get("block") or ()) not in hooked:
            return n, context, value
        negatives = torch.cat(nag.contexts(like=context), dim=1).expand(context.shape[0], -1, -1)
        return n, torch.cat([context, negatives], dim=1), torch.cat([value, negatives.to(value.dtype)], dim=1)

    return append_negatives
