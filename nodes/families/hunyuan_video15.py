"""HunyuanVideo 1.5: HunyuanVideo's double-stream blocks over [text, image] and single-stream blocks over cat(text,
image), laid out as Flux's (hunyuan_video/model.py ``forward_orig``; flux/math.py hands q and k after RoPE, heads
first).

Text: Qwen2.5-VL tokens of the video template, cut as Qwen-Image's (text_encoders/hunyuan_image.py: the system part
up to '<|im_start|>user\\n' dropped, the closing '<|im_end|>\\n<|im_start|>assistant\\n' kept, marked as template),
refined by the model's token refiner ``txt_in``, which reads the forward's timestep, then given the type embedding
of a prompt. Text tokens have RoPE id 0. Quoted text also goes through ByT5, and an image-to-video run adds
CLIP-vision tokens: both join the text stream before the prompt's tokens, and a text mask would join the attention;
the capture and the negatives refuse them before sampling (not mapped yet).

Attention-space negatives (nodes/families/joint.py): each negative is refined by ``txt_in`` at the forward's batch,
with the forward's timesteps, as ``_apply_model`` converts them from σ (the site's APPLY_MODEL wrapper hands them:
contract ``TIMESTEPS``), then typed as a prompt (``cond_type_embedding`` 0), and joins the text stream at the first
double block with RoPE rows of id 0.
"""

from __future__ import annotations

import torch

from comfy.ldm.hunyuan_video.model import HunyuanVideo

from ..contract import TIMESTEPS
from . import flux, joint, qwen_image
from .text import PromptTokens, chat_prompt

NAME = "HunyuanVideo 1.5"
KEY = "qwen25_7b"
UNMAPPED = {"conditioning_byt5small": "ByT5 tokens of its quoted text", "clip_vision_output": "CLIP-vision tokens of "
            "its image (image to video)", "attention_mask": "a text attention mask"}
OUTSIDE = ("block_index", "block_type", "total_blocks", "img_slice")  # what a block's options add to the forward's
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    """HunyuanVideo 1.5: HunyuanVideo's model with the type embedding that tells prompt, ByT5 and vision tokens
    apart (HunyuanVideo 1.0 has none, and is refused: families.REFUSED)."""
    return type(diffusion_model) is HunyuanVideo and getattr(diffusion_model, "cond_type_embedding", None) is not None


def text(clip, prompt: str) -> PromptTokens:
    return chat_prompt(clip, prompt, KEY, qwen_image.template_end)


def unmapped(entries) -> str | None:
    """Why the site cannot read a run whose conditioning ``entries`` put tokens other than the prompt's into the text
    stream, or a mask into its attention."""
    for entry in entries:
        found = [what for key, what in UNMAPPED.items() if entry.get(key) is not None]
        if found:
            return (f"a HunyuanVideo 1.5 conditioning carries {found[0]}, which the model puts into the text stream "
                    "beside the prompt's, and which the pack does not map yet. Use a text-to-video prompt without "
                    "quoted text")
    return None


def capture_refusal(diffusion_model, entries) -> str | None:
    return unmapped(entries)


negatives_refusal = capture_refusal


def negative_context(conditioning: list, model_patcher) -> torch.Tensor:
    """A negative's Qwen2.5-VL context; refused before sampling where it carries tokens the pack does not map."""
    if (why := unmapped([conditioning[0][1]])) is not None:
        raise ValueError(f"AttentionNegativeTerm: input 'conditioning': {why}.")
    return conditioning[0][0]


def dit(diffusion_model) -> joint.Dit:
    def embed(contexts, args):
        options = {k: v for k, v in args["transformer_options"].items() if k not in OUTSIDE}
        timesteps = options[TIMESTEPS]  # the forward's, one per batch row, as the model converted them from σ
        texts = []
        for context in contexts:  # at the forward's batch, so that a negative equal to the prompt is bit for bit it
            rows = context.expand(len(timesteps), -1, -1)
            refined = diffusion_model.txt_in(rows, timesteps.to(context.device), None, transformer_options=options)
            kind = torch.zeros_like(refined[:, :, 0], dtype=torch.long)  # a prompt's tokens: type 0
            texts.append(refined + diffusion_model.cond_type_embedding.to(refined.device)(kind).to(refined.dtype))
        return texts

    def extend_pe(pe, nag):
        """pe with each negative's rows after the prompt's: id 0 on every axis, as a prompt's text tokens have."""
        axes = len(diffusion_model.params.axes_dim)
        rows = [diffusion_model.pe_embedder(torch.zeros(pe.shape[0], tokens, axes, device=pe.device)).to(pe.dtype)
                for tokens in nag.layout.negatives]
        return torch.cat([pe[:, :, :nag.layout.text], *rows, pe[:, :, nag.layout.text:]], dim=2)

    return joint.Dit(flux.blocks(diffusion_model), flux.locate, embed, extend_pe,
                     token_grid=lambda shape: joint.patch_grid(shape[-3:], tuple(diffusion_model.patch_size)))


layers, install = joint.site(dit)
