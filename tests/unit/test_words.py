"""Words from the tokens that feed the attention context, for the three piece styles ComfyUI's tokenizers use."""

from operator import attrgetter

import pytest
from pack import module

Token, Word, choose, default_words, prompt_words, special_words, typed_words = attrgetter(
    "Token", "Word", "choose", "default_words", "prompt_words", "special_words", "typed_words")(
    module("attention.words"))


def tokens(pieces, groups=None, specials=None):
    """Token per piece: ids are positions, so the speller below can spell them back."""
    groups = groups or [1] * len(pieces)
    specials = specials or {}
    return [Token(i, i if p is not None else None, p, groups[i], specials.get(i)) for i, p in enumerate(pieces)]


def speller(pieces):
    """What a tokenizer's decode gives for these pieces (marks become spaces)."""
    def spell(ids):
        text = "".join(pieces[i] for i in ids)
        return text.replace("</w>", " ").replace("▁", " ").replace("Ġ", " ")
    return spell


def words_of(pieces, **kwargs):
    return {w.text: w.columns for w in prompt_words(tokens(pieces, **kwargs), speller(pieces))}


def test_clip_pieces_join_across_a_chunk_break():
    """ComfyUI breaks a long segment mid-word: 'photo' ends chunk 1 (then EOS, BOS), 'realistic</w>' opens chunk 2."""
    pieces = ["<bos>", "a</w>", "photo", "<eos>", "<bos>", "realistic</w>", "circle</w>", "<eos>", "<pad>"]
    specials = {0: "<bos>", 3: "<eos>", 4: "<bos>", 7: "<eos>", 8: "<pad>"}
    found = prompt_words(tokens(pieces, specials=specials), speller(pieces))
    assert [(w.text, w.columns) for w in found] == [("a", (1,)), ("photorealistic", (2, 5)), ("circle", (6,))]
    assert [(w.text, w.columns) for w in special_words(tokens(pieces, specials=specials))] == [
        ("<bos>", (0, 4)), ("<eos>", (3, 7)), ("<pad>", (8,))]


def test_sentencepiece_words_start_with_the_space_mark_and_punctuation_stands_alone():
    assert words_of(["▁a", "▁red", ",", "▁photo", "real", "istic", "▁red"]) == {
        "a": (0,), "red": (1, 6), ",": (2,), "photorealistic": (3, 4, 5)}


def test_byte_level_words_start_with_the_space_byte():
    assert words_of(["a", "Ġblue", "Ġsq", "uare", "."]) == {"a": (0,), "blue": (1,), "square": (2, 3), ".": (4,)}


def test_segments_and_embeddings_are_word_boundaries():
    """Weighted segments are separate groups; an embedding's vectors (no piece) form one word named in order."""
    pieces = ["▁red", None, None, "▁dot"]
    found = prompt_words(tokens(pieces, groups=[1, 2, 2, 3]), speller(pieces), ["embedding:style"])
    assert [(w.text, w.columns) for w in found] == [("red", (0,)), ("embedding:style", (1, 2)), ("dot", (3,))]
    assert choose(found, "style")[0].columns == (1, 2)


def test_choose_defaults_to_content_words_and_names_a_missing_one():
    found = [Word("a", (1,)), Word(",", (2,)), Word("dot", (3,)), Word("<eos>", (4,))]
    assert [w.text for w in default_words(found)] == ["a", "dot"]
    assert [w.text for w in choose(found, "")] == ["a", "dot"]
    assert [w.text for w in choose(found, " Dot , a, dot")] == ["dot", "a"]
    with pytest.raises(KeyError, match="hat"):
        choose(found, "dot, hat")


def test_a_word_clip_splits_at_a_digit_is_one_word_where_it_was_typed_as_one():
    """CLIP's pre-tokenizer splits '3d' into the pieces '3</w>' and 'd</w>', like two typed words: the prompt as typed
    joins them back (it was refused as "not in the prompt; its words are: 3, d"), at every adjacent run, so SD3's
    CLIP and T5 columns of '3d' merge into one word. 'd' then 'x' stays apart ('dx' was not typed), and a '3' typed
    on its own keeps its column."""
    pieces = ["a</w>", "3</w>", "d</w>", "render</w>", "of</w>", "3</w>", "d</w>", "x</w>", "d</w>", "3</w>"]
    found = typed_words(prompt_words(tokens(pieces), speller(pieces)), "a 3d render of 3d x d 3")
    assert [(w.text, w.columns) for w in found] == [("a", (0,)), ("3d", (1, 2, 5, 6)), ("render", (3,)),
                                                    ("of", (4,)), ("x", (7,)), ("d", (8,)), ("3", (9,))]
    assert choose(found, "3d")[0].columns == (1, 2, 5, 6)
    with pytest.raises(KeyError, match="3dr"):
        choose(found, "3dr")


def test_a_hyphenated_word_is_one_word_where_it_was_typed_as_one():
    """'close-up': tokenizers split off the hyphen; the word typed with it is one word, found by that name."""
    pieces = ["a</w>", "close</w>", "-</w>", "up</w>", "of</w>", "a</w>", "cat</w>"]
    found = typed_words(prompt_words(tokens(pieces), speller(pieces)), "a close-up of a cat")
    assert choose(found, "close-up")[0].columns == (1, 2, 3)
    assert [w.text for w in default_words(found)] == ["a", "close-up", "of", "cat"]
