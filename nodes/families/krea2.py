"""Krea 2 (SingleStreamDiT): one stream [text, image] through every block, each making one attention over it.

Text: Qwen3-VL-4B tokens of the templated prompt, cut as Qwen-Image's are (text_encoders/krea2.py); the model fuses
12 of its layers (``txtfusion``). Image queries: the latent in 2×2 patches (edit reference latents follow and are not
queries of the map). Hooks: the attention override, which tells a block's call by the ``block_index``,
``block_type`` "single" and ``img_slice`` [text length, stream length] that ``_forward`` sets; the blocks have no
``dit`` replace.

Attention-space negatives: a ``post_input`` patch passes each negative's context through the model's own
``txtfusion`` and ``txtmlp`` (once per sampling run) and appends it to the stream after the image (the final cut
keeps the text length it measured before the patch, so the negatives may not come before the image), with the text's
RoPE position 0, as the prompt's. The override reorders a block's q/k/v [txt⁺, img, txt⁻₁ …] to [txt⁺, txt⁻₁ …, img],
guides them as a joint family's (nodes/nag.py ``guide_joint``) and puts the output back in the stream's order. A
reference latent modulated at timestep 0 (index_timestep_zero) would modulate the negatives, which follow it, as a
reference: refused.
"""

from __future__ import annotations

import math

import torch

from comfy.ldm.krea2.model import SingleStreamDiT

from ...attention.store import LayerId
from ..contract import CALL, LATENT
from ..nag import JointLayout, active
from ..site import whole
from . import joint, qwen_image
from .text import PromptTokens, chat_prompt

NAME = "Krea 2"
KEY = "qwen3vl_4b"
POST_INPUT = "post_input"


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, SingleStreamDiT)


def text(clip, prompt: str) -> PromptTokens:
    return chat_prompt(clip, prompt, KEY, qwen_image.template_end)


def layers(diffusion_model, latent_shape: tuple[int, ...]) -> list[LayerId]:
    grid = joint.image_grid(latent_shape)
    return [LayerId(("single_block", i), 0, grid) for i in range(len(diffusion_model.blocks))]


def negatives_refusal(diffusion_model, entries) -> str | None:
    """Why the attention-space negatives cannot be exact beside the conditioning ``entries`` they guide: a reference
    latent modulated at timestep 0."""
    default = getattr(diffusion_model, "default_ref_method", None)
    for entry in entries:
        method = entry.get("reference_latents_method", default)
        if entry.get("reference_latents") is not None and method == "index_timestep_zero":
            return ("Krea 2 modulates a reference latent of method index_timestep_zero (ReferenceLatent with "
                    "FluxKontextMultiReferenceLatentMethod) at timestep 0 from its first token to the stream's "
                    "end, where the negatives' texts ride, so they would be modulated as a reference. Use the "
                    "'index' method, or no attention-space negative, with that reference")
    return None


def make_append_negatives(diffusion_model):
    """The post_input patch: with negatives active in this forward, their fused texts after the image."""

    def append_negatives(args: dict) -> dict:
        options = args["transformer_options"]
        nag = active(options)
        if nag is None:
            return args
        txt, img = args["txt"], args["img"]
        texts = []
        for negative, context in zip(nag.negatives, nag.contexts(like=txt), strict=True):
            key = ("krea2 fused", negative.index, txt.device, txt.dtype)  # it depends on its context alone
            if key not in nag.run_cache:
                nag.run_cache[key] = diffusion_model.txtmlp(diffusion_model.txtfusion(
                    diffusion_model._unpack_context(context), mask=None, transformer_options=options))
            texts.append(nag.run_cache[key])
        nag.layout = JointLayout(txt.shape[1], tuple(t.shape[1] for t in texts), options.get(LATENT) or
                                 nag.latent_shape, texts)
        stream = torch.cat([img, *(t.expand(img.shape[0], -1, -1) for t in texts)], dim=1)
        ids = args["img_ids"]
        return {**args, "img": stream, "img_ids": torch.cat([ids, ids.new_zeros(ids.shape[0], nag.layout.extra,
                                                                                ids.shape[2])], dim=1)}

    return append_negatives


def make_override(previous):
    """The site's optimized_attention_override: a block's call guided and recorded; every other call (txtfusion's,
    or outside a forward the site joins) to the earlier override or ComfyUI's function, unchanged."""

    def override(func, *args, **kwargs):
        options = kwargs.get("transformer_options") or {}
        call, nag = options.get(CALL), active(options)
        if options.get("block_type") != "single" or "img_slice" not in options or (call is None and nag is None):
            return joint.unchanged(func, previous, args, kwargs)
        text = options["img_slice"][0]
        grid = joint.image_grid(options.get(LATENT) or (call or nag).latent_shape)
        q, k, heads, heads_split = joint.attention_args(args, kwargs)
        layer = LayerId(("single_block", options["block_index"]), 0, grid)
        block = joint.Block(layer, 0, q.shape[2], slice(text, text + math.prod(grid)), slice(0, text))
        if nag is None or nag.layout is None:
            out = joint.unchanged(func, previous, args, kwargs)
            if call is not None:
                joint.record(joint.BlockRun(block, call), options, q, k, heads, heads_split, None)
            return out
        extra, image = nag.layout.extra, q.shape[2] - text - nag.layout.extra

        def joint_order(x):  # [txt⁺, img, txt⁻…] → [txt⁺, txt⁻…, img]
            return torch.cat([x.narrow(2, 0, text), x.narrow(2, text + image, extra), x.narrow(2, text, image)], 2)

        ordered = tuple(joint_order(x) for x in args[:3])
        whole_image = whole(options, nag.latent_shape) and image >= math.prod(grid)
        text_call = joint.TextCall(nag, grid=grid if whole_image else None)
        run = joint.BlockRun(block if call is not None else None, call, {0: text_call})
        out = joint.guide(func, previous, (*ordered, *args[3:]), kwargs, run, text_call)  # (B, L, C), joint order
        if call is not None:
            joint.record(run, options, ordered[0], ordered[1], heads, heads_split, None)
        return torch.cat([out[:, :text], out[:, text + extra:], out[:, text:text + extra]], dim=1)

    override.__wrapped__ = previous
    return override


def install(patched) -> dict:
    """The site on ``patched``: the override, chained over the one before, and the post_input patch."""
    options = patched.model_options.setdefault("transformer_options", {})
    installed = {joint.OVERRIDE: make_override(options.get(joint.OVERRIDE)),
                 POST_INPUT: make_append_negatives(patched.get_model_object("diffusion_model"))}
    patched.model_options["transformer_options"] = {**options, joint.OVERRIDE: installed[joint.OVERRIDE]}
    patched.set_model_patch(installed[POST_INPUT], POST_INPUT)
    return installed


def installed_hooks(model_options: dict) -> dict:
    """The override and this site's post_input patch, if still in place, keyed as ``install`` returns them."""
    options = model_options.get("transformer_options", {})
    patches = options.get("patches", {}).get(POST_INPUT, [])
    ours = next((p for p in patches if getattr(p, "__qualname__", "") == make_append_negatives.__qualname__
                 + ".<locals>.append_negatives"), None)
    return {joint.OVERRIDE: options.get(joint.OVERRIDE), POST_INPUT: ours}
