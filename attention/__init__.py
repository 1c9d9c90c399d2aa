"""Attention capture and r_t analysis, pure torch (the capture patch lives in nodes/)."""

from .maps import attention, attention_probs, word_maps
from .metrics import SCORES, map_scores, r_curve, r_t, related_token, score_index, suggested_start
from .store import AttentionStore, LayerId

__all__ = [
    "SCORES",
    "AttentionStore",
    "LayerId",
    "attention",
    "attention_probs",
    "map_scores",
    "r_curve",
    "r_t",
    "related_token",
    "score_index",
    "suggested_start",
    "word_maps",
]
