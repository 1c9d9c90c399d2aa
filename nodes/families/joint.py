"""What the DiT families share: a ``dit`` block replace names the block and where its text sits, and the
``optimized_attention_override`` records the block's text attention beside the layer's own output.

Both hooks chain what was installed before: the block replace calls the earlier replace (or the original block)
with the block's record in ``transformer_options``; the override calls the earlier override (or the attention
function ComfyUI chose, sage and flash included) for the output, then computes the maps from the same q and k.

Attention-space negatives use the same two hooks. The block replace puts the negatives' texts beside the prompt's:
joint families embed each negative with the model's own text embedder once per call and append it to the text
stream at the first block ([txt⁺, txt⁻₁ … txt⁻ₖ], every later block carries it through its token-wise text weights,
and the model's final cut of the image, e.g. Flux's ``img[:, txt.shape[1]:]``, falls past it), extending the
positional embedding by the negatives' own rows; Wan appends them to each block's cross-attention context. The
override then guides the block's text attention (nodes/nag.py ``guide_joint`` / ``guide_cross``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...attention.store import LayerId
from ..contract import IMAGE_SINK, KEY, NAG, NAG_PART, TextKeys, TextStream
from ..nag import JointLayout, cross_parts, guide_cross, guide_joint, joint_parts, merges

BLOCK = f"{KEY}.block"  # transformer_options: the Block being run, set by the capture's block replace
NAG_BLOCK = f"{KEY}.nag_block"  # transformer_options: the NagBlock being run, set by the negatives' block replace
OVERRIDE = "optimized_attention_override"


@dataclass
class Block:
    """One run of one block: which of its attention calls is the text one, and where image queries and text keys
    sit in that call's q and k (``length``: the call's q sequence length, checked). ``cross``: the text call is a
    cross attention (Wan); else joint, with ``queries.start`` text tokens before the image."""

    layer: LayerId
    call: int
    length: int
    queries: slice
    keys: slice
    seen: int = field(default=0)
    cross: bool = False


@dataclass
class NagBlock:
    """One run of one block under attention-space negatives: which of its attention calls NAG guides (``calls``,
    and for cross attention only those whose keys number one of ``keys``: the calls that see the negatives)."""

    calls: tuple[int, ...]
    cross: bool
    grid: tuple[int, ...]
    keys: tuple[int, ...] = ()
    seen: int = field(default=0)

    def guides(self, index: int, k: torch.Tensor, heads_split: bool) -> bool:
        return index in self.calls and (not self.cross or k.shape[2 if heads_split else 1] in self.keys)


# locate(kind, index, args, call) → the Block of this run of the block, or None when the block is not captured
Locate = Callable[[str, int, dict, object], Block | None]


def patch_grid(dims: tuple[int, ...], patch: tuple[int, ...]) -> tuple[int, ...]:
    """The token grid of latent dims cut in patches, padded up as ComfyUI's pad_to_patch_size does."""
    return tuple(math.ceil(d / p) for d, p in zip(dims, patch, strict=True))


def image_grid(latent_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The token grid of an image latent (…, H, W) in 2×2 patches: SD3, Flux, Chroma, Qwen-Image."""
    return patch_grid(latent_shape[-2:], (2, 2))


def text_then_image(kind: str, index: int, args: dict, call) -> Block:
    """A block whose one joint attention runs over [txt, img] (SD3's joint blocks, Qwen-Image's blocks): the image
    queries are the first grid-many image tokens, the text keys the txt tokens."""
    text_tokens, image_tokens = args["txt"].shape[1], args["img"].shape[1]
    return Block(LayerId((kind, index), 0, call.grid), 0, text_tokens + image_tokens,
                 slice(text_tokens, text_tokens + math.prod(call.grid)), slice(0, text_tokens))


def attention_args(args: tuple, kwargs: dict):
    """q, k, heads and the heads-first flag of an optimized_attention call, as ComfyUI's DiTs make it."""
    heads = args[3] if len(args) > 3 else kwargs["heads"]
    return args[0], args[1], heads, kwargs.get("skip_reshape", False)


def make_override(recorder, previous):
    """An optimized_attention_override that returns the layer's own attention and records the block's text call."""

    def override(func, *args, **kwargs):
        out = previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
        options = kwargs.get("transformer_options") or {}
        block, call = options.get(BLOCK), recorder.call(options)
        if block is None or call is None:
            return out
        part = options.get(NAG_PART)
        if part == IMAGE_SINK or isinstance(part, TextStream):  # the merged form's parts that hold no maps
            return out
        if isinstance(part, int) or (isinstance(part, TextKeys) and part.term is not None):  # a negative's part
            index = block.seen - 1  # of the call just counted (NAG above)
        else:
            index, block.seen = block.seen, block.seen + 1
        if index != block.call:
            return out
        q, k, heads, heads_split = attention_args(args, kwargs)
        length = q.shape[2 if heads_split else 1]
        if options.get(NAG) is None and length != block.length:
            raise RuntimeError(f"{recorder.node}: block {block.layer.name} ran attention over {length} tokens where "
                               f"{block.length} were expected: this ComfyUI lays out its attention differently from "
                               "the one the capture knows (see nodes/compat.py)")
        image = block.queries.stop - block.queries.start if block.queries.stop is not None else None
        if block.cross:
            parts = [(p.term, block.queries, p.keys) for p in cross_parts(options, k.shape[2 if heads_split else 1])]
        else:
            parts = [(p.term, slice(p.queries, p.queries + image), p.keys)
                     for p in joint_parts(options, block.queries.start)]
        for term, queries, keys in parts:
            call.record(block.layer, options["uuids"], q, k, heads, queries, keys, heads_split, term=term)
        return out

    override.__wrapped__ = previous
    return override


def make_block_replace(recorder, kind: str, index: int, locate: Locate, previous):
    """A dit block replace that puts the block's record in transformer_options and runs the block."""

    def replace(args, extra):
        call = recorder.call(args["transformer_options"])
        block = None if call is None else locate(kind, index, args, call)
        if block is not None:
            args = {**args, "transformer_options": {**args["transformer_options"], BLOCK: block}}
        return previous(args, extra) if previous is not None else extra["original_block"](args)

    replace.__wrapped__ = previous
    return replace


def install(patched, recorder, blocks: list[tuple[str, int]], locate: Locate) -> dict:
    """The override and a block replace per block on ``patched``, each chained over the one before; returns them."""
    options = patched.model_options.setdefault("transformer_options", {})
    replaces = options.get("patches_replace", {}).get("dit", {})
    installed = {OVERRIDE: make_override(recorder, options.get(OVERRIDE))}
    patched.model_options["transformer_options"] = {**options, OVERRIDE: installed[OVERRIDE]}
    for kind, index in blocks:
        installed[(kind, index)] = make_block_replace(recorder, kind, index, locate, replaces.get((kind, index)))
        patched.set_model_patch_replace(installed[(kind, index)], "dit", kind, index)
    return installed


def installed_hooks(model_options: dict) -> dict:
    """The override and the dit block replaces in ``model_options``, keyed as ``install`` returns them."""
    options = model_options.get("transformer_options", {})
    return {OVERRIDE: options.get(OVERRIDE), **options.get("patches_replace", {}).get("dit", {})}


def hooks(blocks: Callable[[object], list[tuple[str, int]]], locate: Locate, token_grid=image_grid):
    """A DiT family's ``layers(diffusion_model, latent_shape)`` and ``install(patched, recorder)``: one layer per
    block of ``blocks``, at the token grid; the override and a block replace on each block."""

    def layers(diffusion_model, latent_shape: tuple[int, ...]) -> list[LayerId]:
        return [LayerId(block, 0, token_grid(latent_shape)) for block in blocks(diffusion_model)]

    def install_hooks(patched, recorder) -> dict:
        return install(patched, recorder, blocks(patched.get_model_object("diffusion_model")), locate)

    return layers, install_hooks


def attention_call(func, previous, args: tuple, kwargs: dict):
    """``attend(q, k, v, options)``: this attention call with its q/k/v and transformer_options replaced, through the
    earlier override (or ComfyUI's own function)."""

    def attend(q, k, v, options):
        call_kwargs = {**kwargs, "transformer_options": options}
        if previous is not None:
            return previous(func, q, k, v, *args[3:], **call_kwargs)
        return func(q, k, v, *args[3:], **call_kwargs)

    return attend


def make_negative_override(previous):
    """An optimized_attention_override: the block's text attention guided by the active negatives; every other call
    (and every call without negatives) goes to the earlier override, or ComfyUI's function, unchanged."""

    def override(func, *args, **kwargs):
        options = kwargs.get("transformer_options") or {}
        nag, block = options.get(NAG), options.get(NAG_BLOCK)
        if nag is None or block is None:
            return previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
        index, block.seen = block.seen, block.seen + 1
        q, k, heads, heads_split = attention_args(args, kwargs)
        if not block.guides(index, k, heads_split):
            return previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
        mask = kwargs.get("mask", args[4] if len(args) > 4 else None)
        if mask is not None or kwargs.get("skip_output_reshape", False):
            raise RuntimeError("AttentionNegativeTerm: this model's text attention uses an attention mask (or a "
                               "heads-first output), which attention-space negatives do not support yet")
        attend = attention_call(func, previous, args, kwargs)
        if block.cross:
            return guide_cross(attend, q, k, args[2], options, nag, block.grid)
        return guide_joint(attend, q, k, args[2], options, nag, heads, heads_split, block.grid, merges(func, q.dtype),
                           options.get(BLOCK) is not None)

    override.__wrapped__ = previous
    return override


def make_negative_block_replace(first: bool, embed, extend_pe, calls: tuple[int, ...], cross: bool, token_grid,
                                previous, cut: int = 0):
    """A dit block replace for attention-space negatives. ``embed(contexts)`` gives the negatives' texts as this
    block's text stream holds them (the model's own embedder); joint families (``first``: the first block of a
    forward) append them to txt once, Wan (``cross``) to every block's context. ``extend_pe(pe, nag)`` gives the
    positional embedding with the negatives' rows after the prompt's. ``calls``: which attention calls of the block
    read the text; for cross attention, those whose keys are the whole extended context, or it less the ``cut``
    tokens a layer cuts off its front (Wan i2v: the CLIP-vision tokens)."""

    def replace(args, extra):
        options = args["transformer_options"]
        nag = options.get(NAG)
        if nag is not None and not nag.applies(options["uuids"]):  # no row to guide in this forward
            if first:
                nag.layout = None
            nag = None
        if nag is not None and not (first or cross) and nag.layout is None:
            nag = None  # the first block ran without them in this pass (SkipLayerGuidance skipped it): txt holds none
        if nag is not None:
            args = dict(args)
            if first or cross:
                txt = args["txt"]
                texts = nag.cached(("text", txt.device, txt.dtype), lambda: embed(nag.contexts(like=txt)))
                if first:
                    nag.layout = JointLayout(txt.shape[1], tuple(t.shape[1] for t in texts))
                args["txt"] = torch.cat([txt, *(t.expand(txt.shape[0], -1, -1) for t in texts)], dim=1)
            if extend_pe is not None and args.get("pe") is not None:
                if nag.layout.pe is None or nag.layout.pe[0] is not args["pe"]:  # once per forward
                    nag.layout.pe = (args["pe"], extend_pe(args["pe"], nag))
                args["pe"] = nag.layout.pe[1]
            grid = token_grid(nag.latent_shape)
            keys = (args["txt"].shape[1], args["txt"].shape[1] - cut) if cross else ()
            args["transformer_options"] = {**options, NAG_BLOCK: NagBlock(calls, cross, grid, keys)}
        return previous(args, extra) if previous is not None else extra["original_block"](args)

    replace.__wrapped__ = previous
    return replace


def install_negatives(patched, blocks: list[tuple[str, int]], embed, extend_pe, token_grid, calls=lambda block: (0,),
                      cross: bool = False, cut=lambda block: 0) -> dict:
    """The negatives' override and a block replace per block on ``patched``, each chained over the one before."""
    options = patched.model_options.setdefault("transformer_options", {})
    replaces = options.get("patches_replace", {}).get("dit", {})
    installed = {OVERRIDE: make_negative_override(options.get(OVERRIDE))}
    patched.model_options["transformer_options"] = {**options, OVERRIDE: installed[OVERRIDE]}
    for i, (kind, index) in enumerate(blocks):
        installed[(kind, index)] = make_negative_block_replace(i == 0, embed, extend_pe, calls((kind, index)), cross,
                                                               token_grid, replaces.get((kind, index)),
                                                               cut((kind, index)))
        patched.set_model_patch_replace(installed[(kind, index)], "dit", kind, index)
    return installed
