"""Z⁺ and every Z⁻ᵢ of a joint-attention layer from one image attention: the softmax over [txt, img] merged from parts.

The image queries of a joint layer attend over [txt, img]. Per query and head, with ℓ = q·k/√d, a = Σ_txt e^ℓ,
b = Σ_img e^ℓ, A the attention over the text's keys alone and I the one over the image keys alone,

    Z(txt) = (a·A + b·I) / (a + b)                                                      (1)

the merge of softmax blocks that flash attention makes (Dao et al. 2022, https://arxiv.org/abs/2205.14135). Z⁺ and
every Z⁻ᵢ share b and I, the costly part, and differ in (a, A), which are cheap (T text keys, not T + N keys).

b·I is read from one attention of the image queries over the image keys and a sink: one more key whose logit for
each query is s (near L⁺ = log a⁺, so that neither part underflows), whose value is the indicator e_d, while the image
keys carry e_{d+1}. It returns, per query and head, P = b·I/(e^s + b), σ = e^s/(e^s + b) and γ = b/(e^s + b). With
L = log a the log-sum-exp of the image queries over that text's keys and ρ = e^(L − s), (1) is

    Z(txt) = (ρσ·A + P) / (ρσ + γ)                                                      (2)

a ratio of sums of positive terms: no cancellation, in any dtype. The sink's logit rides in the queries' extra channel
(s·√d′ against a key of 1), and the kernel's 1/√d′ (d′ = d + 8) is undone by q′ = q·√(d′/d).
"""

from __future__ import annotations

import math

import torch

EXTRA_CHANNELS = 8  # per head: the sink's logit and the two indicators, padded to a multiple of 8 as kernels want
LOGIT_BLOCK = 1 << 22  # logits per block of image queries over a text (16 MB in fp32): bounds the transient


def with_sink(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sink_logit: torch.Tensor, token_dim: int):
    """q′, k′, v′ of the image queries q over the image keys k, v and the sink, and the sink's logit as the kernel sees
    it (fp32, shaped as ``sink_logit``).

    q, k, v: (B, heads, L, d) or (B, L, heads, d), the tokens along ``token_dim``; ``sink_logit``: s per query, q's
    shape without d. Each head gets EXTRA_CHANNELS more channels: q′ = [q·√(d′/d), s·√d′], k′ = [k, 0] and, last, the
    sink [0, 1]; v′ = [v, 0, 1] and the sink [0, 1, 0]. Each is one new buffer, in q's layout."""
    d = q.shape[-1]
    wide = d + EXTRA_CHANNELS
    q_wide = q.new_zeros(*q.shape[:-1], wide)
    torch.mul(q, math.sqrt(wide / d), out=q_wide[..., :d])
    q_wide[..., d] = sink_logit * math.sqrt(wide)
    kernel_logit = q_wide[..., d].float() / math.sqrt(wide)  # s as rounded to the model's dtype
    tokens = k.shape[token_dim]
    with_row = [*k.shape[:-1], wide]
    with_row[token_dim] += 1
    k_wide, v_wide = k.new_zeros(with_row), v.new_zeros(with_row)
    k_wide.narrow(token_dim, 0, tokens)[..., :d] = k
    v_wide.narrow(token_dim, 0, tokens)[..., :d] = v
    v_wide.narrow(token_dim, 0, tokens)[..., d + 1] = 1.0
    k_wide.select(token_dim, tokens)[..., d] = 1.0
    v_wide.select(token_dim, tokens)[..., d] = 1.0
    return q_wide, k_wide, v_wide, kernel_logit


def text_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int = LOGIT_BLOCK):
    """(A, L) of image queries q (B, heads, N, d) over one text's keys and values k, v (B, heads, T, d) alone:
    A = softmax(ℓ)·V, (B, N, heads, d), and L = log Σ_txt e^ℓ, (B, N, heads), ℓ = q·k/√d; in fp32, in blocks of at
    most ``block`` logits."""
    b, heads, n, _ = q.shape
    kt, values = k.float().transpose(-1, -2) * k.shape[-1] ** -0.5, v.float()
    attention = torch.empty(b, heads, n, v.shape[-1], device=q.device)
    log_sum = torch.empty(b, heads, n, device=q.device)
    step = max(1, block // (b * heads * k.shape[2]))
    for s in range(0, n, step):
        logits = q[:, :, s:s + step].float() @ kt
        log_sum[:, :, s:s + step] = logits.logsumexp(dim=-1)
        attention[:, :, s:s + step] = logits.sub_(log_sum[:, :, s:s + step, None]).exp_() @ values
    return attention.transpose(1, 2), log_sum.transpose(1, 2)


def merged(image: torch.Tensor, heads: int, kernel_logit: torch.Tensor,
           texts: list[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """Z(txt) of each text by (2), in fp32, (B, N, heads, d).

    Args:
        image: the attention over the image keys and the sink, (B, N, heads·(d + 8)), as ComfyUI returns it.
        kernel_logit: the sink's logit s per query, (B, N, heads) (``with_sink``).
        texts: (A, L) of each text (``text_attention``): the image queries' attention over its keys alone
            (B, N, heads, d) and its log-sum-exp (B, N, heads).
    """
    b, n, _ = image.shape
    per_head = image.view(b, n, heads, -1).float()
    part = per_head[..., :-EXTRA_CHANNELS]  # P = b·I/(e^s + b)
    sink, rest = per_head[..., -EXTRA_CHANNELS], per_head[..., 1 - EXTRA_CHANNELS]  # σ, γ
    found = []
    for a, log_sum in texts:
        text = sink * torch.exp((log_sum - kernel_logit).clamp(max=80.0))  # ρσ = a/(e^s + b); finite in fp32
        total = (text + rest).clamp(min=torch.finfo(torch.float32).tiny)
        found.append(torch.addcmul(part, text[..., None], a.float()).div_(total[..., None]))
    return found
