"""Attention capture and r_t analysis, pure torch (the capture's ComfyUI hooks live in nodes/)."""

from .maps import column_matrix, text_attention, word_maps
from .metrics import SCORES, map_scores, r_t, score_index
from .store import AttentionStore, LayerId

__all__ = [
    "SCORES",
    "AttentionStore",
    "LayerId",
    "column_matrix",
    "map_scores",
    "r_t",
    "score_index",
    "text_attention",
    "word_maps",
]
