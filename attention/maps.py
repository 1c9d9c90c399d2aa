"""Cross-attention maps recomputed from projected q and k, the way fused kernels never return them."""

from __future__ import annotations

import torch

QUERY_CHUNK = 4096  # query rows per softmax block: bounds the transient (B·heads·chunk·T floats)


def attention_probs(q: torch.Tensor, k: torch.Tensor, heads: int, chunk: int = QUERY_CHUNK) -> torch.Tensor:
    """softmax(QKᵀ/√d) averaged over heads, in fp32 (Vaswani et al. 2017, eq. 1).

    q: (B, N, heads·d) image queries; k: (B, T, heads·d) text keys. Returns (B, N, T); each row sums to 1.
    """
    b, n, width = q.shape
    d = width // heads
    kh = k.reshape(b, -1, heads, d).transpose(1, 2).float()  # (B, heads, T, d)
    out = []
    for start in range(0, n, chunk):
        qh = q[:, start:start + chunk].reshape(b, -1, heads, d).transpose(1, 2).float()  # (B, heads, n', d)
        out.append((qh @ kh.transpose(-1, -2) * d**-0.5).softmax(dim=-1).mean(dim=1))  # (B, n', T)
    return torch.cat(out, dim=1)


def word_maps(probs: torch.Tensor, columns: list[list[int]], height: int, width: int) -> torch.Tensor:
    """Per word, the sum of its token columns (its BPE pieces, and its copies in a repeated context).

    probs: (B, N, T) with N = height·width. Returns (B, words, height, width).
    """
    maps = torch.stack([probs[..., cols].sum(dim=-1) for cols in columns], dim=1)  # (B, words, N)
    return maps.reshape(probs.shape[0], len(columns), height, width)
