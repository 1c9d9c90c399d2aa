"""Words of a prompt → token columns of its cross-attention context (pure: token ids in, columns out)."""

from __future__ import annotations

import re
from collections.abc import Sequence

WEIGHT = re.compile(r":\s*[-+]?(?:\d+\.?\d*|\.\d+)")  # ComfyUI's (word:1.2) weights
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def prompt_words(text: str) -> list[str]:
    """The distinct words of a prompt in order, without ComfyUI's weight syntax: '(glasses:1.2), red' → glasses, red."""
    words = [w.lower() for w in WORD.findall(WEIGHT.sub(" ", text))]
    return list(dict.fromkeys(words))


def find_columns(rows: Sequence[Sequence[int]], pieces: Sequence[int]) -> list[int]:
    """Every context column of every occurrence of ``pieces`` (a word's BPE ids) in the token rows.

    Rows are concatenated on the token axis, so column = row · len(row) + position. All pieces of all occurrences
    are returned: their maps are summed into the word's map.
    """
    columns = []
    for r, row in enumerate(rows):
        for j in range(len(row) - len(pieces) + 1):
            if list(row[j:j + len(pieces)]) == list(pieces):
                columns += [r * len(row) + j + i for i in range(len(pieces))]
    return columns
