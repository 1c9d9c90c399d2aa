"""Prompts as the nodes encode and compare them."""

from __future__ import annotations

import torch


def encode(clip, text: str) -> list:
    """CLIPTextEncode's output for ``text``."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def same_conditioning(a: list, b: list) -> bool:
    """Whether two CONDITIONINGs carry the same context and pooled vector (what CLIPTextEncode of one text gives)."""
    if len(a) != len(b):
        return False
    for (ta, ea), (tb, eb) in zip(a, b, strict=True):
        if ta.shape != tb.shape or not torch.equal(ta, tb):
            return False
        pa, pb = ea.get("pooled_output"), eb.get("pooled_output")
        if (pa is None) != (pb is None) or (pa is not None and not torch.equal(pa, pb)):
            return False
    return True
