"""Attention maps of image queries over text keys, recomputed beside the layer's own attention.

Fused kernels never return the attention weights (pytorch/pytorch#119811), so the capture recomputes
softmax(QKᵀ/√d) for the image-query × text-key block, in fp32, from the very q and k the layer's attention saw.
In joint attention (SD3, Flux, Qwen-Image) the softmax is taken over the text keys only: the map is the layer's
attention to the text, renormalised to sum to 1 over the text keys, so joint and cross attention read alike.
"""

from __future__ import annotations

import torch

QUERY_CHUNK = 4096  # image queries per softmax block: bounds the transient (B·heads·chunk·T floats)


def heads_first(x: torch.Tensor, heads: int, heads_split: bool) -> torch.Tensor:
    """(B, L, heads·d) or, with ``heads_split``, (B, heads, L, d) → (B, heads, L, d)."""
    if heads_split:
        return x
    b, length, width = x.shape
    return x.view(b, length, heads, width // heads).transpose(1, 2)


def text_attention(q: torch.Tensor, k: torch.Tensor, heads: int, queries: slice, keys: slice,
                   heads_split: bool = False, chunk: int = QUERY_CHUNK, bias: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """softmax over the text keys of (Q_img K_txtᵀ)/√d + b (Vaswani et al. 2017, eq. 1), averaged over heads.

    q, k: the layer's projected queries and keys, (B, L, heads·d) or (B, heads, L, d); ``queries`` and ``keys``
    pick the image rows and the text columns; ``bias``: an additive mask over those columns, (B or 1, 1, 1, T)
    (a padded key gets −max and no share). Returns (B, N, T) in fp32, each row summing to 1.
    """
    qh, kh = heads_first(q, heads, heads_split), heads_first(k, heads, heads_split)
    kt = kh[:, :, keys].float().transpose(-1, -2)  # (B, heads, d, T)
    scale = kh.shape[-1] ** -0.5
    image = qh[:, :, queries]
    b = 0.0 if bias is None else bias.float()
    maps = [(image[:, :, s:s + chunk].float() @ kt * scale + b).softmax(dim=-1).mean(dim=1)
            for s in range(0, image.shape[2], chunk)]
    return torch.cat(maps, dim=1)


def column_matrix(columns: list[tuple[int, ...]], length: int, tokens: int, cut: bool = False,
                  padded_to: int | None = None) -> torch.Tensor:
    """(tokens, words): 1 where a context column belongs to a word.

    ``columns`` index a context of ``length`` tokens. When ComfyUI batches it with a longer one, it repeats the
    context up to their least common multiple (comfy/conds.py), so each copy of a column carries part of the word's
    attention: every copy j + r·length counts. With ``cut``, the context may be cut to its unmasked tokens (an LTXV
    attention-space negative): shorter, and still holding every column. ``padded_to``: the length the model pads the
    context to with tokens of its own (Z-Image: a multiple of 32; LTX-2's connectors: 1024 with registers; neither
    batches contexts of two lengths): one copy, then the pads, which belong to no word.
    """
    padded = tokens == padded_to
    one_copy = (cut and tokens < length and all(c < tokens for cols in columns for c in cols)) or padded
    if tokens % length and not one_copy:
        raise ValueError(f"a context of {tokens} tokens is not a repeat of the prompt's {length}")
    matrix = torch.zeros(tokens, len(columns))
    for word, cols in enumerate(columns):
        for copy in range(0, length if one_copy else tokens, length):
            matrix[[copy + c for c in cols], word] = 1.0
    return matrix


def word_maps(probs: torch.Tensor, select: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """Each word's map, the sum of its columns: probs (B, N, T) @ select (T, words) → (B, words, *grid)."""
    return (probs @ select).transpose(1, 2).reshape(probs.shape[0], select.shape[1], *grid)
