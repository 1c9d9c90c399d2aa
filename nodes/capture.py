"""Cross-attention capture as a model patch: every attn2 layer of the UNet records word maps into a store.

A call that records (the one at each step's own σ_i) whose every batch chunk is captured computes the layer's
softmax(QKᵀ/√d) once, in fp32, and takes both the output and the head-averaged maps from it. Everywhere else the
output stays ComfyUI's optimized attention (or the attn2 replace installed before), and the maps are recomputed
only for the captured chunks. Branches are told apart by ``cond_or_uncond``: the slot of each
batch chunk. Under the stock CFG slot 0 is the positive and slot 1 the negative; the guidance batch function
publishes its own slot names (positive, negative, terms, empty) in ``transformer_options``.
"""

from __future__ import annotations

import math

import torch

import comfy.ldm.modules.attention as comfy_attention
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample

from ..attention import AttentionStore, LayerId, attention, word_maps
from ..guidance import own_step
from .patch import EFFECTS, KEY, SLOTS, WRAPPERS

STOCK_SLOTS = ("positive", "negative")


def attn2_layers(model, height: int, width: int) -> list[LayerId]:
    """Every cross-attention layer of the UNet and its resolution for a (height, width) latent.

    Input blocks halve the size at each Downsample (a stride-2 conv: ⌈h/2⌉); output block i runs at the size of the
    skip it concatenates, that of input block N − 1 − i; the middle block at the deepest size.
    """
    unet = model.get_model_object("diffusion_model")
    layers, skips, size = [], [], (height, width)

    def add(block_id: tuple[str, int], block) -> None:
        for m in block.modules():
            if isinstance(m, SpatialTransformer):
                layers.extend(LayerId(block_id, i, *size) for i in range(len(m.transformer_blocks)))

    for i, block in enumerate(unet.input_blocks):
        if any(isinstance(m, Downsample) for m in block.modules()):
            size = tuple(math.ceil(s / 2) for s in size)
        add(("input", i), block)
        skips.append(size)
    add(("middle", 0), unet.middle_block)
    for i, block in enumerate(unet.output_blocks):
        size = skips.pop()
        add(("output", i), block)
    return layers


def capture_model(model, store: AttentionStore, columns: dict[str, list[list[int]]], node: str = "AttentionCapture"):
    """A clone of ``model`` that records, per branch name, the maps of the given word columns into ``store``.

    The store is emptied when each sampling run starts, so it always holds the latest run, and its pooling is
    planned for that run's steps, batch and latent size before the first step.
    """
    patched = model.clone()
    blocks = list(dict.fromkeys(layer.block for layer in attn2_layers(patched, 1, 1)))

    def plan_store(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        store.reset()
        layers = attn2_layers(patched, *latent_image.shape[-2:])
        maps_per_step = latent_image.shape[0] * sum(len(c) for c in columns.values())
        try:
            store.plan(layers, maps_per_step, len(sigmas) - 1)
        except MemoryError as error:
            raise ValueError(f"{node}: input 'max_mb': {error}") from None
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)

    patched.add_wrapper_with_key(WRAPPERS.OUTER_SAMPLE, f"{KEY}.capture", plan_store)
    patched.model_options.setdefault("transformer_options", {})[EFFECTS] = store  # read by the guidance batch
    replaces = patched.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
    existing = [key for key in replaces if tuple(key[:2]) in blocks and len(key) == 3]
    for key in [*blocks, *existing]:  # a (block, index) replace wins over the block's own in ComfyUI: wrap both
        patched.set_model_attn2_replace(make_capture(store, columns, replaces.get(key)), *key)
    return patched


def make_capture(store: AttentionStore, columns: dict[str, list[list[int]]], previous):
    """An attn2 replace ``fn(q, k, v, extra)`` that returns the usual output and records the wanted maps."""

    def layer_output(q, k, v, extra):
        if previous is not None:
            return previous(q, k, v, extra)
        return comfy_attention.optimized_attention(q, k, v, extra["n_heads"], attn_precision=extra["attn_precision"])

    def attn2(q, k, v, extra):
        heads, sigma = extra["n_heads"], float(extra["sigmas"][0])
        step = own_step(extra["sample_sigmas"].tolist(), sigma)  # one record per step: the call at its own σ_i
        slots, chunks = extra.get(SLOTS, STOCK_SLOTS), extra["cond_or_uncond"]
        wanted = [(i, slots[slot]) for i, slot in enumerate(chunks) if columns.get(slots[slot])]
        if step is None or not wanted:
            return layer_output(q, k, v, extra)
        rows = q.shape[0] // len(chunks)
        if previous is None and len(wanted) == len(chunks):
            out, probs = attention(q, k, v, heads)  # every chunk is recorded: one softmax for output and maps
        else:  # the output stays the optimized (or previous) attention; maps only for the recorded chunks
            out = layer_output(q, k, v, extra)
            pick = lambda x: torch.cat([x[i * rows:(i + 1) * rows] for i, _ in wanted])  # noqa: E731
            probs = attention(pick(q), pick(k), None, heads)[1]
        height, width = extra["activations_shape"][-2:]
        layer = LayerId(tuple(extra["block"]), extra.get("block_index", 0), height, width)
        for j, (_, branch) in enumerate(wanted):
            maps = word_maps(probs[j * rows:(j + 1) * rows], columns[branch], height, width)
            store.add(step, sigma, layer, branch, maps)
        return out

    return attn2
