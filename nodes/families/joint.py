"""What the DiT families share: a ``dit`` block replace names the block and where its text sits, and the
``optimized_attention_override`` records the block's text attention beside the layer's own output.

Both hooks chain what was installed before: the block replace calls the earlier replace (or the original block)
with the block's record in ``transformer_options``; the override calls the earlier override (or the attention
function ComfyUI chose, sage and flash included) for the output, then computes the maps from the same q and k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ...attention.store import LayerId
from ..contract import KEY

BLOCK = f"{KEY}.block"  # transformer_options: the Block being run, set by the capture's block replace
OVERRIDE = "optimized_attention_override"


@dataclass
class Block:
    """One run of one block: which of its attention calls is the text one, and where image queries and text keys
    sit in that call's q and k (``length``: the call's q sequence length, checked)."""

    layer: LayerId
    call: int
    length: int
    queries: slice
    keys: slice
    seen: int = field(default=0)


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
        index, block.seen = block.seen, block.seen + 1
        if index != block.call:
            return out
        q, k, heads, heads_split = attention_args(args, kwargs)
        length = q.shape[2 if heads_split else 1]
        if length != block.length:
            raise RuntimeError(f"{recorder.node}: block {block.layer.name} ran attention over {length} tokens where "
                               f"{block.length} were expected: this ComfyUI lays out its attention differently from "
                               "the one the capture knows (see nodes/compat.py)")
        uuids = options["uuids"]
        call.record(block.layer, uuids, q, k, heads, block.queries, block.keys, heads_split)
        return out

    return override


def make_block_replace(recorder, kind: str, index: int, locate: Locate, previous):
    """A dit block replace that puts the block's record in transformer_options and runs the block."""

    def replace(args, extra):
        call = recorder.call(args["transformer_options"])
        block = None if call is None else locate(kind, index, args, call)
        if block is not None:
            args = {**args, "transformer_options": {**args["transformer_options"], BLOCK: block}}
        return previous(args, extra) if previous is not None else extra["original_block"](args)

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
