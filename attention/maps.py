"""Cross-attention maps recomputed from projected q and k, the way fused kernels never return them."""

from __future__ import annotations

import functools

import torch

QUERY_CHUNK = 4096  # query rows per softmax block: bounds the transient (B·heads·chunk·T floats)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor | None, heads: int, chunk: int = QUERY_CHUNK):
    """softmax(QKᵀ/√d)·V per head (Vaswani et al. 2017, eq. 1), and the softmax averaged over heads, in fp32.

    q: (B, N, heads·d) image queries; k, v: (B, T, heads·d) text keys and values. Returns the output (B, N, heads·d)
    in q's dtype (None when v is None) and the maps (B, N, T), each row summing to 1.
    """
    b, n, width = q.shape
    d = width // heads
    split = lambda x: x.reshape(b, -1, heads, x.shape[-1] // heads).transpose(1, 2).float()  # noqa: E731
    kh, vh = split(k), None if v is None else split(v)  # (B, heads, T, d)
    outs, maps = [], []
    for start in range(0, n, chunk):
        probs = (split(q[:, start:start + chunk]) @ kh.transpose(-1, -2) * d**-0.5).softmax(dim=-1)
        maps.append(probs.mean(dim=1))  # (B, n', T)
        if vh is not None:
            outs.append((probs @ vh).transpose(1, 2).flatten(2))  # (B, n', heads·d)
    return (torch.cat(outs, dim=1).to(q.dtype) if outs else None), torch.cat(maps, dim=1)


def attention_probs(q: torch.Tensor, k: torch.Tensor, heads: int, chunk: int = QUERY_CHUNK) -> torch.Tensor:
    """softmax(QKᵀ/√d) averaged over heads, in fp32: (B, N, T)."""
    return attention(q, k, None, heads, chunk)[1]


@functools.cache
def column_matrix(columns: tuple[tuple[int, ...], ...], tokens: int) -> torch.Tensor:
    """(tokens, words): 1 where a token column belongs to a word."""
    matrix = torch.zeros(tokens, len(columns))
    for word, cols in enumerate(columns):
        matrix[list(cols), word] = 1.0
    return matrix


def word_maps(probs: torch.Tensor, columns: list[list[int]], height: int, width: int) -> torch.Tensor:
    """Per word, the sum of its token columns (its BPE pieces, and its copies in a repeated context).

    probs: (B, N, T) with N = height·width. Returns (B, words, height, width).
    """
    select = column_matrix(tuple(map(tuple, columns)), probs.shape[-1]).to(probs.device)
    return (probs @ select).transpose(1, 2).reshape(probs.shape[0], len(columns), height, width)
