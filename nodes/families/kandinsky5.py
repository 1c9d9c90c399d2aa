"""Kandinsky 5 (video and image): text blocks refine the Qwen2.5-VL context, then every visual block makes a
self-attention over the video tokens and a cross-attention from them to that context.

Text: Qwen2.5-VL tokens of the templated prompt, cut as Qwen-Image's are (text_encoders/kandinsky5.py uses
Qwen-Image's encoder); CLIP-L feeds only the pooled vector. Image queries: the latent in 1×2×2 patches, maps [frame,
H, W] (Kandinsky 5 Image's latent is one frame: maps [H, W]). Hook: the ``dit`` double_block replaces of the visual
blocks (kandinsky5/model.py) and the attention override; in a block, the self-attention comes first, then the text's.
Calls are heads-first (B, heads, L, d). ComfyUI v0.33's own ``block_wrap`` calls a visual block with keywords it does
not take (``x=``, ``context=``) and returns a tensor where the replace must return {"x": …}, so any dit replace
crashed there: the site hands every replace below it, and the block, ``original_block``, which calls the block by
position as ``forward_orig`` does without a replace.

Attention-space negatives: once per forward, each negative's context goes through the model's own ``text_embeddings``
and text blocks, with the forward's time embedding (its time and the pooled vector, the prompt's, as every joint
family's negative stream is modulated) and its own 1-D text positions, exactly as ``forward_orig`` refines a prompt;
it is appended to every visual block's context, and the override splits the text call (nodes/nag.py
``guide_cross``).
"""

from __future__ import annotations

from comfy.ldm.kandinsky5.model import Kandinsky5

from ...attention.store import LayerId
from . import joint, qwen_image
from .text import PromptTokens, chat_prompt

NAME = "Kandinsky 5"
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, Kandinsky5)


def text(clip, prompt: str) -> PromptTokens:
    return chat_prompt(clip, prompt, qwen_image.KEY, qwen_image.template_end)


def blocks(diffusion_model) -> list[tuple[str, int]]:
    return [("double_block", i) for i in range(len(diffusion_model.visual_transformer_blocks))]


def dit(diffusion_model) -> joint.Dit:
    patch = tuple(diffusion_model.patch_size)

    def token_grid(latent_shape: tuple[int, ...]) -> tuple[int, ...]:  # Kandinsky 5 Image: (h, w), as Flux's
        if len(latent_shape) == 5:
            return joint.patch_grid(latent_shape[-3:], patch)
        return joint.patch_grid(latent_shape[-2:], patch[1:])

    def locate(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> joint.Block:
        return joint.Block(LayerId((kind, index), 0, grid), 1, args["x"].shape[1], slice(None), slice(None),
                           cross=True)

    def embed(contexts, args):  # the text blocks' attention is not visual block 0's (its block_index and type)
        time_embed = args["time_embed"]
        options = {k: v for k, v in args["transformer_options"].items() if k not in ("block_index", "block_type")}
        texts = []
        for context in contexts:
            text_embed = diffusion_model.text_embeddings(context).expand(time_embed.shape[0], -1, -1)
            freqs = diffusion_model.rope_encode_1d(context.shape[1], device=context.device, dtype=args["x"].dtype,
                                                   transformer_options=options)
            for block in diffusion_model.text_transformer_blocks:
                text_embed = block(text_embed, time_embed, freqs, transformer_options=options)
            texts.append(text_embed)
        return texts

    def original_block(index: int):
        block = diffusion_model.visual_transformer_blocks[index]

        def run(args: dict) -> dict:
            return {"x": block(args["x"], args["context"], args["time_embed"], freqs=args["freqs"],
                               transformer_options=args["transformer_options"])}

        return run

    return joint.Dit(blocks(diffusion_model), locate, embed, token_grid=token_grid, keys=("x", "context"),
                     cross=True, calls=lambda block, options: {1: "context"}, original_block=original_block)


layers, install = joint.site(dit)
