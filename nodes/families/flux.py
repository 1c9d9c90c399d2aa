"""Flux.1, Flux.2 (Klein, dev) and Chroma: joint attention over [text, image] in double-stream blocks, and over
cat(text, image) in single-stream blocks.

Text: T5-XXL only for Flux.1 (at least 256 tokens, no BOS; CLIP-L feeds only its pooled vector) and Chroma (PixArt's
T5, no padding); Flux.2 Klein: Qwen3 (4B or 8B) reading the prompt in its chat template, which the context keeps
whole, padded to 512 (text_encoders/flux.py ``KleinTokenizer``); Flux.2 dev: Mistral 3 reading it in its [INST]
template, kept whole, which the model pads on the left to 512 tokens (``Flux2.extra_conds``). Image queries: the
latent in 2×2 patches (Flux.2: 1×1), first in the image tokens (Kontext and Flux.2 reference latents follow and are
not queries of the map). Hook: ``dit`` double_block/single_block replaces and the attention override (flux/model.py,
chroma/model.py; flux/math.py hands q and k after RoPE, heads first).

Attention-space negatives (nodes/families/joint.py): each negative's context goes through the model's own ``txt_in``
and joins the text stream at the first double block; its RoPE rows are those ``_forward`` gives a prompt's text: id 0
on every axis, but 0 … T⁻ − 1 on Flux.2's text axis. The single blocks run on cat(txt⁺, txt⁻…, img), and the
model's final ``img[:, txt.shape[1]:]`` cuts past the negatives, since ``txt`` is the extended stream.
"""
from __future__ import annotations

import math

import torch

from comfy.ldm.chroma.model import Chroma
from comfy.ldm.flux.model import Flux

from ...attention.store import LayerId
from . import joint
from .text import PromptTokens, chat_prompt, instruct_prompt, single_encoder

NAME = "Flux.1, Flux.2 / Chroma"
KLEIN = ("qwen3_4b", "qwen3_8b")  # Flux.2 Klein's text encoders
MISTRAL = "mistral3_24b"  # Flux.2 dev's (its tokenizer travels in the text encoder's checkpoint: the CLIP carries it)
FLUX2_CONTEXT = 512  # the text tokens Flux.2's model pads a shorter context to, on the left
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    """Flux and Chroma; not Chroma Radiance, a Chroma on pixels in 16×16 patches (refused by name)."""
    return isinstance(diffusion_model, Flux | Chroma) and type(diffusion_model).__name__ != "ChromaRadiance"


def text(clip, prompt: str) -> PromptTokens:
    """T5 for Flux.1 and Chroma; Flux.2 Klein's Qwen3 reads the prompt in its chat template, Flux.2 dev's Mistral 3 in
    its instruction template, the whole of it kept (Mistral's padded on the left to 512 tokens by the model)."""
    if hasattr(clip.tokenizer, MISTRAL):
        return instruct_prompt(clip, prompt, MISTRAL, FLUX2_CONTEXT)
    key = next((key for key in KLEIN if hasattr(clip.tokenizer, key)), None)
    return single_encoder(clip, prompt, "t5xxl") if key is None else chat_prompt(clip, prompt, key)


def blocks(diffusion_model) -> list[tuple[str, int]]:
    skip_double, skip_single = (set(getattr(diffusion_model, name, ())) for name in ("skip_mmdit", "skip_dit"))
    return ([("double_block", i) for i in range(len(diffusion_model.double_blocks)) if i not in skip_double]
            + [("single_block", i) for i in range(len(diffusion_model.single_blocks)) if i not in skip_single])


def locate(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> joint.Block:
    """Double blocks give the text length (txt); single blocks run on cat(txt, img) and reuse it."""
    if kind == "double_block":
        call.text_tokens = args["txt"].shape[1]
        length = args["txt"].shape[1] + args["img"].shape[1]
    else:
        length = args["img"].shape[1]
    text_tokens = call.text_tokens
    layer = LayerId((kind, index), 0, grid)
    return joint.Block(layer, 0, length, slice(text_tokens, text_tokens + math.prod(grid)), slice(0, text_tokens))


def text_rope(diffusion_model):
    """``extend_pe(pe, nag)`` of a model laid out as Flux's (Flux, Chroma, HunyuanVideo 1.5)."""

    def extend_pe(pe, nag):
        """pe (B, 1, L, d/2, 2, 2) with each negative's text rows after the prompt's, positioned as ``_forward``
        positions a prompt's: id 0 on every rope axis, but 0 … T⁻ᵢ − 1 on the ``txt_ids_dims`` axes (Flux.2 numbers
        its text tokens on its 4th axis; Flux.1, Chroma and HunyuanVideo 1.5 have none)."""
        axes = len(diffusion_model.params.axes_dim)
        numbered = getattr(diffusion_model.params, "txt_ids_dims", None) or ()
        rows = []
        for tokens in nag.layout.negatives:
            ids = torch.zeros(pe.shape[0], tokens, axes, device=pe.device, dtype=torch.float32)
            for axis in numbered:
                ids[:, :, axis] = torch.arange(tokens, device=pe.device, dtype=torch.float32)
            rows.append(diffusion_model.pe_embedder(ids).to(pe.dtype))
        return torch.cat([pe[:, :, :nag.layout.text], *rows, pe[:, :, nag.layout.text:]], dim=2)

    return extend_pe


def dit(diffusion_model) -> joint.Dit:
    # Flux.2 (global modulation) gets its context padded on the left to 512 tokens (model_base.Flux2.extra_conds)
    length = FLUX2_CONTEXT if getattr(diffusion_model.params, "global_modulation", False) else 0

    norm = getattr(diffusion_model, "txt_norm", None) or (lambda c: c)  # Ovis-Image normalises its text first

    def embed(contexts, args):
        return [diffusion_model.txt_in(norm(torch.nn.functional.pad(c, (0, 0, max(0, length - c.shape[1]), 0))))
                for c in contexts]

    patch = diffusion_model.patch_size  # Flux.1 and Chroma: 2×2; Flux.2: 1×1
    return joint.Dit(blocks(diffusion_model), locate, embed, text_rope(diffusion_model),
                     token_grid=lambda shape: joint.patch_grid(shape[-2:], (patch, patch)))


layers, install = joint.site(dit)
