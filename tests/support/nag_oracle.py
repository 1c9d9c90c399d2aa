"""The oracles of attention-space negatives, written from the four equations of Chen et al. 2025
(https://arxiv.org/abs/2505.21179) and from plain softmax attention, never from the pack's code."""

import torch


def heads_first(x, heads, split):
    return x if split else x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def attention(q, k, v, mask=None):
    """softmax(QKᵀ/√d + mask)·V per head, (B, heads, L, d) → (B, L, heads·d); mask additive, (B, 1, 1, L_k)."""
    bias = 0.0 if mask is None else mask.double()
    weights = (q.double() @ k.double().transpose(-1, -2) * q.shape[-1] ** -0.5 + bias).softmax(dim=-1)
    out = weights @ v.double()
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def nag_reference(z_pos, z_negs, phis, tau, alpha):
    """The four equations, as written in the issue."""
    z_tilde = z_pos + sum(phi * (z_pos - z_neg) for phi, z_neg in zip(phis, z_negs, strict=True))
    n = z_tilde.abs().sum(dim=-1, keepdim=True) / z_pos.abs().sum(dim=-1, keepdim=True)
    z_hat = z_tilde * torch.minimum(n, torch.full_like(n, tau)) / n
    return alpha * z_hat + (1 - alpha) * z_pos
