"""HunyuanVideo 1.5: HunyuanVideo's double-stream blocks over [text, image] and single-stream blocks over cat(text,
image), laid out as Flux's (hunyuan_video/model.py ``forward_orig``; flux/math.py hands q and k after RoPE, heads
first).

Text: Qwen2.5-VL tokens of the video template, cut as Qwen-Image's (text_encoders/hunyuan_image.py: the system part
up to '<|im_start|>user\\n' dropped, the closing '<|im_end|>\\n<|im_start|>assistant\\n' kept, marked as template),
refined by the model's token refiner ``txt_in``, which reads the forward's timestep, then given the type embedding
of a prompt. Text tokens have RoPE id 0. The model puts tokens of its own before them: the ByT5 glyph tokens of
quoted text ('Text "…"', type 1) and, image to video, the CLIP-vision tokens of the start image (type 2), in the
stream [vision, ByT5, Qwen2.5-VL] (``text_prefix`` counts them per forward, from its conds). They belong to no word:
the capture maps each word's share of the prompt's Qwen2.5-VL tokens. A text mask would join the attention, and is
refused before sampling.

Attention-space negatives (nodes/families/joint.py): each negative is refined by ``txt_in`` at the forward's batch,
with the forward's timesteps, as ``_apply_model`` converts them from σ (the site's APPLY_MODEL wrapper hands them:
contract ``TIMESTEPS``), then typed as a prompt (``cond_type_embedding`` 0). Its ByT5 tokens, where its text quotes
some, go through the model's ``byt5_in`` and are typed 1, and the run's CLIP-vision tokens lead it, as they lead the
prompt's: a negative replaces the prompt's text, never the run's image (the negative output of
HunyuanVideo15ImageToVideo carries the prompt's image, which is the run's; an image of another is refused before
sampling). It joins the text stream at the first double block with RoPE rows of id 0 (``flux.text_rope``).
"""

from __future__ import annotations

import torch

from comfy.ldm.hunyuan_video.model import HunyuanVideo

from ..contract import TEXT_PREFIX, TIMESTEPS
from . import flux, joint, qwen_image
from .text import PromptTokens, chat_prompt

NAME = "HunyuanVideo 1.5"
KEY = "qwen25_7b"
PROMPT, GLYPHS = 0, 1  # the model's cond_type_embedding of a prompt's and of ByT5's tokens (2: CLIP-vision's)
OUTSIDE = ("block_index", "block_type", "total_blocks", "img_slice")  # what a block's options add to the forward's
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    """HunyuanVideo 1.5: HunyuanVideo's model with the type embedding that tells prompt, ByT5 and vision tokens
    apart (HunyuanVideo 1.0 has none, and is refused: families.REFUSED)."""
    return type(diffusion_model) is HunyuanVideo and getattr(diffusion_model, "cond_type_embedding", None) is not None


def text(clip, prompt: str) -> PromptTokens:
    return chat_prompt(clip, prompt, KEY, qwen_image.template_end)


def text_prefix(diffusion_model, conds: dict) -> tuple[int, int]:
    """The (CLIP-vision, ByT5) tokens the model puts before the prompt's in a forward given ``conds``
    (``forward_orig``: ByT5 only where the model has its glyph mapper ``byt5_in``)."""
    vision, glyphs = conds.get("clip_fea"), conds.get("txt_byt5")
    return (0 if vision is None else vision.shape[1],
            0 if glyphs is None or diffusion_model.byt5_in is None else glyphs.shape[1])


def masked(entries) -> str | None:
    """Why the site cannot read a run whose conditioning ``entries`` put a text mask into its attention."""
    if any(entry.get("attention_mask") is not None for entry in entries):
        return ("a HunyuanVideo 1.5 conditioning carries a text attention mask, which the model puts into its "
                "attention and which the pack does not map yet. Encode the prompt with HunyuanVideo 1.5's own text "
                "encoder (CLIPTextEncode), which keeps no mask")
    return None


def other_image(vision, entries) -> str | None:
    """Why a negative carrying the CLIP-vision output ``vision`` cannot act beside the run's prompt ``entries``: a
    negative's stream takes the run's image, so an image of its own (not the prompt's) would be silently dropped."""
    if vision is None or any(same_image(vision, entry.get("clip_vision_output")) for entry in entries):
        return None
    return ("it carries a CLIP-vision output (an image) that the run's prompt does not, and a negative's stream takes "
            "the run's image: it pushes away from the negative's text only. Feed the AttentionNegativeTerm the text's "
            "own conditioning (CLIPTextEncode), or the negative output of the HunyuanVideo15ImageToVideo that made "
            "the prompt's")


def same_image(a, b) -> bool:
    return a is b or (b is not None and torch.equal(a.last_hidden_state, b.last_hidden_state))


def capture_refusal(diffusion_model, entries) -> str | None:
    return masked(entries)


negatives_refusal = capture_refusal


def negative_context(conditioning: list, guider) -> tuple[torch.Tensor, ...]:
    """A negative's Qwen2.5-VL context, and its ByT5 tokens where its text quotes some and the model reads them;
    refused before sampling where it carries a text mask, or an image other than the run's prompt's."""
    extra = conditioning[0][1]
    why = masked([extra]) or other_image(extra.get("clip_vision_output"), guider.conds.get("positive") or ())
    if why is not None:
        raise ValueError(f"AttentionNegativeTerm: input 'conditioning': {why}.")
    glyphs = extra.get("conditioning_byt5small")
    reads_glyphs = guider.model_patcher.get_model_object("diffusion_model").byt5_in is not None
    return (conditioning[0][0],) if glyphs is None or not reads_glyphs else (conditioning[0][0], glyphs)


def dit(diffusion_model) -> joint.Dit:
    def typed(tokens, kind):
        """``tokens`` plus the model's type embedding of ``kind``, as ``forward_orig`` adds it."""
        ids = torch.full(tokens.shape[:2], kind, dtype=torch.long, device=tokens.device)
        return tokens + diffusion_model.cond_type_embedding.to(tokens.device)(ids).to(tokens.dtype)

    def embed(contexts, args):
        """Each negative's stream [the run's CLIP-vision tokens, its ByT5 tokens, its refined Qwen2.5-VL tokens], at
        the forward's batch, so that a negative equal to the prompt is bit for bit it."""
        options = {k: v for k, v in args["transformer_options"].items() if k not in OUTSIDE}
        timesteps = options[TIMESTEPS]  # the forward's, one per batch row, as the model converted them from σ
        vision = args["txt"][:, :options.get(TEXT_PREFIX, (0, 0))[0]]  # the run's image tokens, as the prompt has them
        texts = []
        for context, *glyphs in contexts:
            rows = context.expand(len(timesteps), -1, -1)
            refined = diffusion_model.txt_in(rows, timesteps.to(context.device), None, transformer_options=options)
            glyphs = [typed(diffusion_model.byt5_in(g.expand(len(timesteps), -1, -1)), GLYPHS) for g in glyphs]
            texts.append(torch.cat([vision, *glyphs, typed(refined, PROMPT)], dim=1))
        return texts

    def unworded(args, contexts):
        """The prompt's CLIP-vision and ByT5 tokens, then each negative's: the run's CLIP-vision and its ByT5."""
        vision, glyphs = args["transformer_options"].get(TEXT_PREFIX, (0, 0))
        return (vision + glyphs, *(vision + sum(g.shape[1] for g in context[1:]) for context in contexts))

    def locate(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> joint.Block:
        """Flux's, less the CLIP-vision and ByT5 tokens before the prompt's, which belong to no word."""
        block = flux.locate(kind, index, args, call, grid)
        block.keys = slice(sum(args["transformer_options"].get(TEXT_PREFIX, ())), block.keys.stop)
        return block

    return joint.Dit(flux.blocks(diffusion_model), locate, embed, flux.text_rope(diffusion_model),
                     token_grid=lambda shape: joint.patch_grid(shape[-3:], tuple(diffusion_model.patch_size)),
                     unworded=unworded)


layers, install = joint.site(dit)
