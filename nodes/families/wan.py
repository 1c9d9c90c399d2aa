"""Wan 2.1 / 2.2: true cross-attention from the video tokens to the text, in every block.

Text: umT5-XXL, padded to 512 tokens, no BOS (text_encoders/wan.py). Image-to-video models put 257 CLIP-vision
tokens before the text in the context and attend to them in a call of their own, which is skipped. Image queries:
the latent in 1×2×2 patches, so maps are [frame, H, W]. Hook: the ``dit`` double_block replaces (wan/model.py) and
the attention override; in a block, the self-attention comes first, then (i2v) the CLIP-vision attention, then the
text's.

Attention-space negatives: each negative's umT5 context goes through the model's own ``text_embedding`` once per
call and is appended to every block's context, after the prompt's (so i2v's 257 CLIP-vision tokens stay first, where
WanI2VCrossAttention cuts them off); the override splits the text cross-attention call's k/v (nodes/nag.py
``guide_cross``). An i2v model given no CLIP-vision features attends to the whole context in its image call too
(``context[:, :None]``), so that call is split and guided as well: both of its calls then read the text.
"""

from __future__ import annotations

from comfy.ldm.wan.model import WanI2VCrossAttention, WanModel

from ...attention.store import LayerId
from . import joint
from .text import PromptTokens, single_encoder

NAME = "Wan 2.1 / 2.2"
CLIP_VISION_TOKENS = 257
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    """Wan 2.1 and 2.2 (t2v, i2v, ti2v): WanModel itself, not its variants (``refusal``)."""
    return type(diffusion_model) is WanModel


def refusal(diffusion_model) -> str | None:
    """Why a Wan variant (VACE, S2V, HuMo, Animate, camera, causal …) is refused: its blocks make attention calls of
    their own (reference, audio, pose or face inputs), so the text call is not where the site finds it."""
    if isinstance(diffusion_model, WanModel) and type(diffusion_model) is not WanModel:
        return ("it is a Wan variant whose blocks make attention calls of their own (reference, audio, pose or face "
                "inputs), which the pack does not map yet")
    return None


def text(clip, prompt: str) -> PromptTokens:
    return single_encoder(clip, prompt, "umt5xxl")


def blocks(diffusion_model) -> list[tuple[str, int]]:
    return [("double_block", i) for i in range(len(diffusion_model.blocks))]


def token_grid(latent_shape: tuple[int, ...]) -> tuple[int, ...]:
    return joint.patch_grid(latent_shape[-3:], (1, 2, 2))


def dit(diffusion_model) -> joint.Dit:
    image_to_video = [isinstance(block.cross_attn, WanI2VCrossAttention) for block in diffusion_model.blocks]

    def locate(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> joint.Block:
        clip_tokens = CLIP_VISION_TOKENS if image_to_video[index] else 0
        image_tokens = args["img"].shape[1]
        return joint.Block(LayerId((kind, index), 0, grid), 1 + (clip_tokens > 0), image_tokens, slice(None),
                           slice(None), cross=True)

    def embed(contexts, args):
        return [diffusion_model.text_embedding(c) for c in contexts]

    def calls(block, options):  # i2v: the CLIP-vision call reads the whole context too when the model gets no CLIP
        return {1: "txt", 2: "txt"} if image_to_video[block[1]] else {1: "txt"}  # features

    return joint.Dit(blocks(diffusion_model), locate, embed, token_grid=token_grid, cross=True, calls=calls,
                     cut=lambda block: CLIP_VISION_TOKENS if image_to_video[block[1]] else 0)


layers, install = joint.site(dit)
