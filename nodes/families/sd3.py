"""SD3 and SD3.5 (MMDiT, MMDiT-X): joint attention over [text, image] in every joint block.

Text: CLIP-L and CLIP-G share positions 0 … 77·chunks − 1 (their features side by side), then T5-XXL from there on
(text_encoders/sd3_clip.py); each word has both sets of columns, and its map is the sum over them, so r_t compares
the whole attention a word gets. Image queries: the latent in 2×2 patches. Hook: the ``dit`` double_block replaces
(mmdit.py) and the attention override; MMDiT-X's extra self-attention over the image (x_block_self_attn) is the
second call of its block and is left out.

Attention-space negatives: each negative's context goes through the model's own ``context_processor`` (when it has
one) and ``context_embedder`` and joins the context stream at the first joint block; SD3 gives text no positional
embedding. The last block's context is pre-only and dropped, as the model drops it.
"""

from __future__ import annotations

from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT

from . import joint
from .text import PromptTokens, UnsupportedText, encoded, rows_of

NAME = "SD3 / SD3.5 (MMDiT)"
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, MMDiT) and diffusion_model.register_length == 0


def text(clip, prompt: str) -> PromptTokens:
    model = clip.cond_stage_model
    clips = [key for key in ("l", "g") if getattr(model, f"clip_{key}", None) is not None]
    if not clips and getattr(model, "t5xxl", None) is None:
        raise UnsupportedText("it has none of SD3's CLIP-L, CLIP-G or T5-XXL")
    parts, offset = [], 0
    if clips:
        rows = {key: rows_of(clip, prompt, key) for key in clips}
        chunks = min(len(r) for r in rows.values())  # sd3_clip cuts l and g to the shorter
        parts.append(encoded(clip, prompt, clips[0], rows[clips[0]][:chunks]))
        offset = sum(len(r) for r in rows[clips[0]][:chunks])
    if getattr(model, "t5xxl", None) is not None:
        rows = rows_of(clip, prompt, "t5xxl")
        parts.append(encoded(clip, prompt, "t5xxl", rows, offset))
        offset += sum(map(len, rows))
    return PromptTokens(parts, offset)


def blocks(diffusion_model) -> list[tuple[str, int]]:
    return [("double_block", i) for i in range(len(diffusion_model.joint_blocks))]


def dit(diffusion_model) -> joint.Dit:
    def embed(contexts, args):
        processor = diffusion_model.context_processor
        return [diffusion_model.context_embedder(processor(c) if processor is not None else c) for c in contexts]

    return joint.Dit(blocks(diffusion_model), joint.text_then_image, embed)


layers, install = joint.site(dit)
