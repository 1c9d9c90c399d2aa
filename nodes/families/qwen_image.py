"""Qwen-Image: joint attention over [text, image] in every transformer block.

Text: Qwen2.5-VL tokens of the templated prompt, with the system template cut as ComfyUI cuts it
(text_encoders/qwen_image.py: up to the second <|im_start|>, and its 'user\\n'); the closing
'<|im_end|>\\n<|im_start|>assistant\\n' stays in the context and is marked as template, never a word. Image queries:
the latent in 2×2 patches (edit reference latents follow and are not queries of the map). Hook: the ``dit``
double_block replaces (qwen_image/model.py) and the attention override.

Attention-space negatives: each negative's context goes through the model's own ``txt_norm`` and ``txt_in`` and
joins the text stream at the first block. Its RoPE rows are its own text positions, txt_start + j for j < T⁻ᵢ, with
txt_start from the latent size exactly as ``_forward`` computes it, embedded by the model's ``pe_embedder``.
"""

from __future__ import annotations

import torch

from comfy.ldm.qwen_image.model import QwenImageTransformer2DModel

from . import joint
from .text import IM_START, NEWLINE, USER, PromptTokens, chat_prompt

NAME = "Qwen-Image"
KEY = "qwen25_7b"
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, QwenImageTransformer2DModel)


def template_end(ids: list, ident) -> int:
    """Where ComfyUI's QwenImageTEModel cuts the template: the second <|im_start|>, past 'user' and a newline."""
    starts = [i for i, token in enumerate(ids) if token == ident[IM_START]][:2]
    end = starts[-1] if starts else -1
    if len(ids) > end + 3 and ids[end + 1] == ident[USER] and ids[end + 2] == ident[NEWLINE]:
        end += 3
    return end


def text(clip, prompt: str) -> PromptTokens:
    return chat_prompt(clip, prompt, KEY, template_end)


def blocks(diffusion_model) -> list[tuple[str, int]]:
    return [("double_block", i) for i in range(len(diffusion_model.transformer_blocks))]


def text_start(latent_shape: tuple[int, ...], patch: int) -> int:
    """The first text position of Qwen-Image's RoPE ids (qwen_image/model.py ``_forward``: ``txt_start``)."""
    h, w = latent_shape[-2:]
    return round(max(((w + patch // 2) // patch) // 2, ((h + patch // 2) // patch) // 2))


def dit(diffusion_model) -> joint.Dit:
    def embed(contexts, args):
        return [diffusion_model.txt_in(diffusion_model.txt_norm(c)) for c in contexts]

    def extend_pe(pe, nag):
        """pe with each negative's rows, at its own text positions, after the prompt's. Its sequence axis is the one
        of ``pe_embedder``'s (B, 1, L, d/2, 2, 2) that ComfyUI kept: v0.33 keeps it, v0.3.64 moved it to dim 1."""
        start = text_start(nag.layout.latent, diffusion_model.patch_size)
        axis = 2 if pe.shape[1] == 1 else 1
        rows = []
        for tokens in nag.layout.negatives:
            ids = torch.arange(start, start + tokens, device=pe.device, dtype=torch.float32)
            ids = ids.reshape(1, -1, 1).repeat(pe.shape[0], 1, 3)
            rows.append(diffusion_model.pe_embedder(ids).movedim(2, axis).to(pe.dtype))
        text = nag.layout.text
        return torch.cat([pe.narrow(axis, 0, text), *rows, pe.narrow(axis, text, pe.shape[axis] - text)], dim=axis)

    return joint.Dit(blocks(diffusion_model), joint.text_then_image, embed, extend_pe)


layers, install = joint.site(dit)
