"""LTX-Video (LTXV): in every block a self-attention over the video tokens, then a cross-attention from them to the
T5 context.

Text: T5-XXL, padded to 128 tokens, no BOS (text_encoders/lt.py), with its attention mask: the model adds −max to
the padding's logits (``_prepare_attention_mask``), so a pad gets no attention, and the capture's maps apply the same
mask. Image queries: the latent in 1×1×1 patches, so maps are [frame, H, W]. Hook: the ``dit`` double_block replaces
(lightricks/model.py) and the attention override; in a block, the self-attention comes first, then the text's.

Attention-space negatives: each negative is cut to its unmasked tokens (``negative_context``: a masked key has
exactly no share, so the cut attention is the masked one), goes through the model's own ``caption_projection`` once
per forward, and is appended to every block's context, after the prompt's; the call's mask is extended by 0s for it,
and the override splits the text call's k/v and mask (nodes/nag.py ``guide_cross``). Keyframe guides
(LTXVAddGuide) change the video's tokens, and below strength 1 (or with a pixel mask) split the self-attention into
several calls, so the text call is no longer the second: the capture and the negatives refuse them before sampling
(``capture_refusal``, ``negatives_refusal``). LTXVImgToVideo's first frame (a noise mask) is fine.
"""

from __future__ import annotations

import torch

from comfy.ldm.lightricks.model import LTXVModel

from ...attention.store import LayerId
from . import joint
from .text import PromptTokens, single_encoder

NAME = "LTX-Video (LTXV)"
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    """LTXV itself; LTX-2 (LTXAVModel, a subclass that also samples audio) is refused (families.REFUSED)."""
    return type(diffusion_model) is LTXVModel


def text(clip, prompt: str) -> PromptTokens:
    return single_encoder(clip, prompt, "t5xxl")


def negative_context(conditioning: list, guider) -> torch.Tensor:
    """A negative's context (1, T⁻, 4096) cut to the tokens its attention mask keeps (the T5 tokens and EOS)."""
    context, extra = conditioning[0][0], conditioning[0][1]
    mask = extra.get("attention_mask")
    return context if mask is None else context[:, mask[0].bool()]


def keyframe_refusal(diffusion_model, entries) -> str | None:
    """Why the site cannot read a run with keyframe guides among ``entries`` (conditioning entries), for the capture
    and for the negatives alike."""
    if any(entry.get("keyframe_idxs") is not None for entry in entries):
        return ("LTXV's keyframe guides (LTXVAddGuide) change the video's tokens (the guide frames join them, masked "
                "frames leave) and, below strength 1, split its self-attention into calls of their own. Run it "
                "without keyframe guides (LTXVImgToVideo's first frame works)")
    return None


capture_refusal = negatives_refusal = keyframe_refusal


def blocks(diffusion_model) -> list[tuple[str, int]]:
    return [("double_block", i) for i in range(len(diffusion_model.transformer_blocks))]


def token_grid(latent_shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(latent_shape[-3:])


def dit(diffusion_model) -> joint.Dit:
    projects = not getattr(diffusion_model, "caption_proj_before_connector", False)  # as _prepare_context does

    def locate(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> joint.Block:
        return joint.Block(LayerId((kind, index), 0, grid), 1, args["img"].shape[1], slice(None), slice(None),
                           cross=True)

    def embed(contexts, args):
        return [diffusion_model.caption_projection(c) if projects else c for c in contexts]

    return joint.Dit(blocks(diffusion_model), locate, embed, token_grid=token_grid, cross=True,
                     calls=lambda block, options: {1: "txt"})


layers, install = joint.site(dit)
