"""Words of a prompt from the tokens that feed the attention context (pure: pieces in, word columns out).

A tokenizer splits text into pieces; the context holds one column per piece, plus special tokens (BOS, EOS,
padding) and, for long CLIP prompts, a new 77-token chunk every 75 pieces, which ComfyUI starts mid-word when a
segment is long. A word is rebuilt from consecutive content pieces, whatever the chunk boundaries between them:

- CLIP's BPE ends a word's last piece with ``</w>``;
- SentencePiece (T5, umT5, Llama, Gemma) starts a word's first piece with ``▁``;
- byte-level BPE (Qwen2.5) starts it with ``Ġ`` (a space byte).

A piece that spells punctuation is a word of its own (SentencePiece glues "," to the word before it) and never a
default word. An embedding (``embedding:name``) is one word made of its vectors' columns. CLIP's pre-tokenizer also
splits letters from digits ("3d" into the pieces '3</w>' and 'd</w>'), which no mark tells from two typed words:
``typed_words`` joins adjacent words back where the prompt as typed has them as one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

END_MARK, START_MARKS = "</w>", ("▁", "Ġ")
SPECIAL = ("<bos>", "<eos>", "<pad>", "<template>")  # <template>: the part of an LLM's chat template in the context
TYPED = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")  # a typed word: letters and digits, inner hyphens and apostrophes


@dataclass(frozen=True)
class Token:
    """One column of the context: its token id and vocabulary piece (None for an embedding vector), the ComfyUI
    word id of its weighted segment or embedding (0 for BOS/EOS/padding), and ``special`` (one of SPECIAL, another
    name for template tokens, or None for content)."""

    column: int
    id: int | None
    piece: str | None
    group: int
    special: str | None = None


@dataclass(frozen=True)
class Word:
    """A word as the prompt reads it, and every context column of every occurrence of it."""

    text: str
    columns: tuple[int, ...]


def is_punctuation(text: str) -> bool:
    """Only punctuation, symbols or spaces, and not empty: ',', '.', '(', '\\n'."""
    return bool(text) and all(unicodedata.category(c)[0] in "PSZC" for c in text)


def word_groups(tokens: Sequence[Token], spell: Callable[[list[int]], str]) -> list[list[Token]]:
    """Consecutive content tokens grouped into words (special tokens are skipped, so chunk breaks join up)."""
    groups: list[list[Token]] = []
    previous, previous_mark = None, False
    for token in tokens:
        if token.special is not None:
            continue
        mark = token.piece is not None and is_punctuation(spell([token.id]))
        if previous is None or token.group != previous.group or (token.piece is None) != (previous.piece is None):
            new = True
        elif token.piece is None:  # the next vector of the same embedding
            new = False
        else:
            new = token.piece.startswith(START_MARKS) or previous.piece.endswith(END_MARK) or mark or previous_mark
        if new:
            groups.append([token])
        else:
            groups[-1].append(token)
        previous, previous_mark = token, mark
    return groups


def prompt_words(tokens: Sequence[Token], spell: Callable[[list[int]], str], embeddings: Sequence[str] = ()
                 ) -> list[Word]:
    """Every distinct word of the context in order, lower-cased, with the columns of all its occurrences.

    ``spell`` turns token ids into text (the tokenizer's own decode); ``embeddings`` names the prompt's embeddings
    in order, as 'embedding:name'.
    """
    names = iter(embeddings)
    columns: dict[str, list[int]] = {}
    spaces: list[int] = []  # a bare space mark ("▁" before punctuation) belongs to the next word
    for group in word_groups(tokens, spell):
        if group[0].piece is None:
            text = next(names, f"embedding:{len(columns)}")
        else:
            text = spell([t.id for t in group]).strip().lower()
        spaces += [t.column for t in group]
        if text:
            columns.setdefault(text, []).extend(spaces)
            spaces = []
    return [Word(text, tuple(cols)) for text, cols in columns.items()]


def typed_words(words: Sequence[Word], text: str) -> list[Word]:
    """``words`` where each word typed in ``text`` that runs of adjacent words spell ("3d" as '3' then 'd') is one
    word with those columns; the parts keep their other columns (a part left with none is gone)."""
    found = list(words)
    for name in dict.fromkeys(TYPED.findall(text.lower())):
        joined = None if any(w.text == name for w in found) else spelled(found, name)
        if joined is not None:
            taken = set(joined.columns)
            found = [Word(w.text, tuple(c for c in w.columns if c not in taken)) for w in found] + [joined]
            found = sorted((w for w in found if w.columns), key=lambda w: min(w.columns))
    return found


def merge_words(lists: Sequence[Sequence[Word]]) -> list[Word]:
    """Word lists of several encoders of one context as one list: the columns of equal words are joined."""
    columns: dict[str, tuple[int, ...]] = {}
    for words in lists:
        for word in words:
            columns[word.text] = columns.get(word.text, ()) + word.columns
    return [Word(text, cols) for text, cols in columns.items()]


def special_words(tokens: Sequence[Token]) -> list[Word]:
    """<bos>, <eos>, <pad> and <template> with their columns, where the context has them."""
    found = {name: tuple(t.column for t in tokens if t.special == name) for name in SPECIAL}
    return [Word(name, cols) for name, cols in found.items() if cols]


def default_words(words: Sequence[Word]) -> list[Word]:
    """The words a user means by 'every word': no punctuation, no special tokens."""
    return [w for w in words if not is_punctuation(w.text) and w.text not in SPECIAL]


def choose(words: Sequence[Word], requested: str) -> list[Word]:
    """The comma-separated ``requested`` words (every default word when empty); raises KeyError naming the first
    missing one."""
    by_text = {w.text: w for w in words} | {w.text.removeprefix("embedding:"): w for w in words}
    names = [name.strip().lower() for name in requested.split(",") if name.strip()]
    if not names:
        return default_words(words)
    missing = next((name for name in names if name not in by_text), None)
    if missing is not None:
        raise KeyError(missing)
    return [by_text[name] for name in dict.fromkeys(names)]


def spelled(words: Sequence[Word], name: str) -> Word | None:
    """``name`` as adjacent words spell it, with the columns of every such run; None when no run spells it."""
    runs = []  # (first column, last column, text) of every occurrence of every word
    for word in words:
        start = None
        for i, column in enumerate(word.columns):
            start = column if start is None else start
            if i + 1 == len(word.columns) or word.columns[i + 1] != column + 1:
                runs.append((start, column, word.text))
                start = None
    runs.sort()
    found: list[int] = []
    for i, (start, end, text) in enumerate(runs):
        j = i
        while name.startswith(text) and text != name and j + 1 < len(runs) and runs[j + 1][0] == end + 1:
            j += 1
            end, text = runs[j][1], text + runs[j][2]
        if text == name and j > i:
            found += range(start, end + 1)
    return Word(name, tuple(found)) if found else None
