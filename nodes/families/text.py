"""From ComfyUI's tokenizers to the context tokens of a prompt: what every family's text side shares.

A CLIP's ``tokenize`` gives, per encoder key ('l', 'g', 'h', 't5xxl', 'umt5xxl', 'qwen25_7b'), rows of
(token, weight, word id). Each family says which rows feed the attention context and where they sit in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from ...attention.words import Token, Word, merge_words, prompt_words, special_words, typed_words

EMBEDDING = re.compile(r"(?:^|[\s,(])embedding:([^\s,()]+)")
IM_START, IM_END, USER, NEWLINE = "<|im_start|>", "<|im_end|>", "user", "Ċ"  # Qwen's chat template (Ċ: a newline)
INST, END_INST = "[INST]", "[/INST]"  # Mistral's instruction template


@dataclass(frozen=True)
class Encoded:
    """One text encoder's tokens in the context, how to spell its token ids as text, and the names of the prompt's
    embeddings it loaded, in order."""

    tokens: list[Token]
    spell: Callable[[list[int]], str]
    embeddings: list[str]
    text: str = ""  # the prompt as typed


@dataclass(frozen=True)
class PromptTokens:
    """The context of one prompt: ``length`` columns filled by one or more encoders (SD3: CLIP, then T5), the
    first ``padding`` of them pads the model adds on the left, which the CONDITIONING lacks (Flux.2 dev)."""

    parts: list[Encoded]
    length: int
    padding: int = 0

    def words(self) -> list[Word]:
        """Every word of the prompt; a word that several encoders spell alike has all their columns."""
        return merge_words([typed_words(prompt_words(p.tokens, p.spell, p.embeddings), p.text) for p in self.parts])

    def special_words(self) -> list[Word]:
        return special_words([t for p in self.parts for t in p.tokens])


class UnsupportedText(ValueError):
    """The CLIP does not feed this family's attention context (another family's text encoder)."""


def encoder(clip, key: str):
    """The SDTokenizer behind a tokenize() key: clip.tokenizer.clip_l for 'l', .t5xxl for 't5xxl'."""
    found = getattr(clip.tokenizer, f"clip_{key}", None) or getattr(clip.tokenizer, key, None)
    if found is None:
        raise UnsupportedText(f"its tokenizer {type(clip.tokenizer).__name__} has no '{key}' encoder")
    return found


def rows_of(clip, text: str, key: str) -> list[list[tuple]]:
    """The (token, weight, word id) rows of ``text`` for one encoder, exactly as CLIPTextEncode tokenizes it."""
    rows = clip.tokenize(text, return_word_ids=True)
    if key not in rows:
        raise UnsupportedText(f"its tokenizer gives {', '.join(rows)}, not '{key}'")
    return rows[key]


def token_id(token) -> int | None:
    """A token's id; None for an embedding vector (or any non-id token, e.g. an image)."""
    if isinstance(token, int) or (torch.is_tensor(token) and token.ndim == 0):
        return int(token)
    return None


def context_tokens(tokenizer, rows: Sequence[Sequence[tuple]], offset: int = 0) -> list[Token]:
    """The tokens of ``rows`` laid end to end from column ``offset``, with BOS, the first EOS after each row's
    content, and the padding marked special."""
    tokens, column = [], offset
    for row in rows:
        ended = False
        for j, (token, _weight, group) in enumerate(row):
            ident = token_id(token)
            special = None
            if group == 0 and ident is not None:
                is_start = j == 0 and tokenizer.start_token is not None and ident == tokenizer.start_token
                is_end = not ended and tokenizer.end_token is not None and ident == tokenizer.end_token
                special = "<bos>" if is_start else "<eos>" if is_end else "<pad>"
                ended = ended or is_end
            piece = None if ident is None else tokenizer.inv_vocab.get(ident, "")
            tokens.append(Token(column, ident, piece, group, special))
            column += 1
    return tokens


def speller(tokenizer) -> Callable[[list[int]], str]:
    """Token ids as text by the tokenizer's own decode (byte-level BPE, CLIP's </w>, SentencePiece's ▁)."""
    inner = tokenizer.tokenizer
    return getattr(inner, "tokenizer", inner).decode  # ComfyUI's SPieceTokenizer wraps a SentencePieceProcessor


def embedding_names(tokenizer, text: str) -> list[str]:
    """'embedding:name' for each embedding of ``text`` that ComfyUI loads, in order (missing ones are dropped, as
    ComfyUI drops them)."""
    if getattr(tokenizer, "embedding_directory", None) is None:
        return []
    names = []
    for name in EMBEDDING.findall(text):
        rows = tokenizer.tokenize_with_weights(f"embedding:{name}")
        if any(token_id(token) is None for row in rows for token, *_ in row):
            names.append(f"embedding:{name}")
    return names


def encoded(clip, text: str, key: str, rows: Sequence[Sequence[tuple]], offset: int = 0) -> Encoded:
    """One encoder's ``rows`` in the context from column ``offset``."""
    tokenizer = encoder(clip, key)
    return Encoded(context_tokens(tokenizer, rows, offset), speller(tokenizer), embedding_names(tokenizer, text), text)


def single_encoder(clip, text: str, key: str) -> PromptTokens:
    """A context made of one encoder's rows, end to end (SD1/SD2/SDXL CLIP chunks, T5, umT5)."""
    rows = rows_of(clip, text, key)
    return PromptTokens([encoded(clip, text, key, rows)], sum(map(len, rows)))


def chat_prompt(clip, text: str, key: str, cut: Callable[[list, dict], int] = lambda ids, ident: 0) -> PromptTokens:
    """A prompt a Qwen LLM encoder reads inside its chat template. The context is the templated row from ``cut(ids,
    ident)`` on (what the encoder keeps); the user's text, from after '<|im_start|>user\\n' (where the context still
    holds it) to the next '<|im_end|>', gives the words; the rest of the context is <template> (padding stays
    <pad>)."""
    rows = rows_of(clip, text, key)
    pieces = (IM_START, IM_END, USER, NEWLINE)
    ident = {piece: i for i, piece in encoder(clip, key).inv_vocab.items() if piece in pieces}
    row = rows[0][cut([token for token, *_ in rows[0]], ident):]
    ids = [token for token, *_ in row]
    header = [ident[IM_START], ident[USER], ident[NEWLINE]]
    opening = next((j + 3 for j in range(len(ids) - 2) if ids[j:j + 3] == header), 0)
    closing = next((j for j in range(opening, len(ids)) if ids[j] == ident[IM_END]), len(ids))
    return PromptTokens(templated(clip, text, key, row, opening, closing), len(row))


def instruct_prompt(clip, text: str, key: str, padded_to: int) -> PromptTokens:
    """A prompt Mistral 3 reads inside its [INST] … [/INST] template, kept whole in the context, which the model pads
    on the left to ``padded_to`` tokens (Flux.2 dev): the words are the user's text, the rest is <template>."""
    row = rows_of(clip, text, key)[0]
    ident = {piece: i for i, piece in encoder(clip, key).inv_vocab.items() if piece in (INST, END_INST)}
    ids = [token for token, *_ in row]
    opening = ids.index(ident[INST]) + 1 if ident.get(INST) in ids else 0
    closing = next((j for j in range(opening, len(ids)) if ids[j] == ident.get(END_INST)), len(ids))
    offset = max(0, padded_to - len(row))
    return PromptTokens(templated(clip, text, key, row, opening, closing, offset), len(row) + offset, offset)


def templated(clip, text: str, key: str, row: list, opening: int, closing: int, offset: int = 0) -> list[Encoded]:
    """A templated prompt's row from column ``offset``: row[opening:closing], the user's text, gives the words; the
    rest is <template> (special tokens stay special)."""
    parts = [encoded(clip, text, key, [row[opening:closing]], offset + opening)]
    for start, stop in ((0, opening), (closing, len(row))):
        if stop > start:
            template = encoded(clip, text, key, [row[start:stop]], offset + start)
            parts.append(Encoded([t if t.special else replace(t, special="<template>") for t in template.tokens],
                                 template.spell, []))
    return parts
