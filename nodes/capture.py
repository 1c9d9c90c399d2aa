"""Cross-attention capture as a model patch: every attn2 layer of the UNet records word maps into a store.

Each layer's output stays the optimized (or the previously installed) attention; softmax(QKᵀ/√d) is recomputed
only for the branches whose words are wanted. Branches are told apart by ``cond_or_uncond``: the slot of each
batch chunk. Under the stock CFG slot 0 is the positive and slot 1 the negative; the guidance batch function
publishes its own slot names (positive, negative, terms, empty) in ``transformer_options``.
"""

from __future__ import annotations

import comfy.ldm.modules.attention as comfy_attention
from comfy.ldm.modules.attention import SpatialTransformer

from ..attention import AttentionStore, LayerId, attention_probs, word_maps
from ..guidance import own_step
from .patch import EFFECTS, KEY, SLOTS, WRAPPERS

STOCK_SLOTS = ("positive", "negative")


def attn2_blocks(model) -> list[tuple[str, int]]:
    """Every UNet block that holds cross-attention: ('input', i), ('middle', 0) and ('output', i)."""
    unet = model.get_model_object("diffusion_model")
    holds = lambda block: any(isinstance(m, SpatialTransformer) for m in block.modules())  # noqa: E731
    return ([("input", i) for i, block in enumerate(unet.input_blocks) if holds(block)]
            + ([("middle", 0)] if holds(unet.middle_block) else [])
            + [("output", i) for i, block in enumerate(unet.output_blocks) if holds(block)])


def capture_model(model, store: AttentionStore, columns: dict[str, list[list[int]]]):
    """A clone of ``model`` that records, per branch name, the maps of the given word columns into ``store``.

    The store is emptied when each sampling run starts, so it always holds the latest run.
    """
    patched = model.clone()

    def reset_store(executor, *args, **kwargs):
        store.reset()
        return executor(*args, **kwargs)

    patched.add_wrapper_with_key(WRAPPERS.OUTER_SAMPLE, f"{KEY}.capture", reset_store)
    patched.model_options.setdefault("transformer_options", {})[EFFECTS] = store  # read by the guidance batch
    replaces = patched.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
    blocks = attn2_blocks(patched)
    existing = [key for key in replaces if tuple(key[:2]) in blocks and len(key) == 3]
    for key in [*blocks, *existing]:  # a (block, index) replace wins over the block's own in ComfyUI: wrap both
        patched.set_model_attn2_replace(make_capture(store, columns, replaces.get(key)), *key)
    return patched


def make_capture(store: AttentionStore, columns: dict[str, list[list[int]]], previous):
    """An attn2 replace ``fn(q, k, v, extra)`` that returns the usual output and records the wanted maps."""

    def attn2(q, k, v, extra):
        if previous is not None:
            out = previous(q, k, v, extra)
        else:
            out = comfy_attention.optimized_attention(q, k, v, extra["n_heads"], attn_precision=extra["attn_precision"])
        sigma = float(extra["sigmas"][0])
        step = own_step(extra["sample_sigmas"].tolist(), sigma)
        if step is None:
            return out  # an intermediate call: one record per step, from the call at the step's own sigma
        height, width = extra["activations_shape"][-2:]
        layer = LayerId(tuple(extra["block"]), extra.get("block_index", 0), height, width)
        slots = extra.get(SLOTS, STOCK_SLOTS)
        rows = q.shape[0] // len(extra["cond_or_uncond"])
        for chunk, slot in enumerate(extra["cond_or_uncond"]):
            branch = slots[slot]
            if columns.get(branch):
                part = slice(chunk * rows, (chunk + 1) * rows)
                probs = attention_probs(q[part], k[part], extra["n_heads"])  # (rows, h·w, T)
                store.add(step, sigma, layer, branch, word_maps(probs, columns[branch], height, width))
        return out

    return attn2
