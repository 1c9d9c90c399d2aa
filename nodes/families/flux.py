"""Flux.1 and Chroma: joint attention over [text, image] in double-stream blocks, and over cat(text, image) in
single-stream blocks.

Text: T5-XXL only (Flux: at least 256 tokens, no BOS; Chroma: PixArt's T5, no padding); CLIP-L feeds only Flux's
pooled vector. Image queries: the latent in 2×2 patches, first in the image tokens (Kontext reference latents
follow and are not queries of the map). Hook: ``dit`` double_block/single_block replaces and the attention override
(flux/model.py, chroma/model.py; flux/math.py hands q and k after RoPE, heads first).

Attention-space negatives (nodes/families/joint.py): each negative's T5 context goes through the model's own
``txt_in`` and joins the text stream at the first double block; its RoPE rows are those of text id 0, as Flux and
Chroma give every text token (``txt_ids = torch.zeros(...)`` in ``_forward``). The single blocks run on
cat(txt⁺, txt⁻…, img), and the model's final ``img[:, txt.shape[1]:]`` cuts past the negatives, since ``txt`` is the
extended stream.
"""

from __future__ import annotations

import math

import torch

from comfy.ldm.chroma.model import Chroma
from comfy.ldm.flux.model import Flux

from ...attention.store import LayerId
from . import joint
from .text import PromptTokens, single_encoder

NAME = "Flux.1 / Chroma"
installed_hooks = joint.installed_hooks


def matches(diffusion_model) -> bool:
    """Flux and Chroma; not Chroma Radiance, a Chroma on pixels in 16×16 patches (refused by name)."""
    return isinstance(diffusion_model, Flux | Chroma) and type(diffusion_model).__name__ != "ChromaRadiance"


def text(clip, prompt: str) -> PromptTokens:
    return single_encoder(clip, prompt, "t5xxl")


def blocks(diffusion_model) -> list[tuple[str, int]]:
    skip_double, skip_single = (set(getattr(diffusion_model, name, ())) for name in ("skip_mmdit", "skip_dit"))
    return ([("double_block", i) for i in range(len(diffusion_model.double_blocks)) if i not in skip_double]
            + [("single_block", i) for i in range(len(diffusion_model.single_blocks)) if i not in skip_single])


def locate(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> joint.Block:
    """Double blocks give the text length (txt); single blocks run on cat(txt, img) and reuse it."""
    if kind == "double_block":
        call.text_tokens = args["txt"].shape[1]
        length = args["txt"].shape[1] + args["img"].shape[1]
    else:
        length = args["img"].shape[1]
    text_tokens = call.text_tokens
    layer = LayerId((kind, index), 0, grid)
    return joint.Block(layer, 0, length, slice(text_tokens, text_tokens + math.prod(grid)), slice(0, text_tokens))


def dit(diffusion_model) -> joint.Dit:
    def embed(contexts):
        return [diffusion_model.txt_in(c) for c in contexts]

    def extend_pe(pe, nag):
        """pe (B, 1, L, d/2, 2, 2) with each negative's text rows after the prompt's, positioned as ``_forward``
        positions a prompt's: id 0 on every rope axis, but 0 … T⁻ᵢ − 1 on the ``txt_ids_dims`` axes (Flux.2 numbers
        its text tokens on its 4th axis; Flux.1 and Chroma have none)."""
        axes = len(diffusion_model.params.axes_dim)
        numbered = getattr(diffusion_model.params, "txt_ids_dims", None) or ()
        rows = []
        for tokens in nag.layout.negatives:
            ids = torch.zeros(pe.shape[0], tokens, axes, device=pe.device, dtype=torch.float32)
            for axis in numbered:
                ids[:, :, axis] = torch.arange(tokens, device=pe.device, dtype=torch.float32)
            rows.append(diffusion_model.pe_embedder(ids).to(pe.dtype))
        return torch.cat([pe[:, :, :nag.layout.text], *rows, pe[:, :, nag.layout.text:]], dim=2)

    return joint.Dit(blocks(diffusion_model), locate, embed, extend_pe)


token_grid = joint.image_grid
layers, install = joint.site(dit)
