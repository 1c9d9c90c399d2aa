"""r(i) picks a content word, and the gate rules on planted curves, maps and predictions (pure, no ComfyUI)."""

import math

import pytest
import torch
from pack import module

related, gates = module("attention.related"), module("attention.gates")
online = module("guidance.online")
NAN = math.nan


def blob(y: int, x: int, size: int = 16) -> torch.Tensor:
    """A map peaked at (y, x)."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8.0)


def test_function_words_are_never_candidates_in_the_prompts_language():
    assert related.content_words(["a", "professional", "office", "woman", "with", ",", "<eos>"]) == [1, 2, 3]
    assert related.content_words(["une", "femme", "avec", "des", "lunettes"]) == [1, 4]
    assert related.language(["ein", "mann", "mit", "hut"]) == "german"
    assert related.content_words(["a", "the"]) == [0, 1]  # nothing left: every word


def test_r_i_is_the_content_word_whose_map_correlates_best_not_a_function_word():
    """'professional office woman' / 'glasses': the glasses sit on the woman's face; 'a' spreads like everything."""
    positives = ["a", "professional", "office", "woman"]
    face, desk = blob(4, 8), blob(12, 4)
    maps = torch.stack([face + desk + 0.5, desk * 0.5 + blob(8, 12), desk, face + 0.1 * desk])
    choice = related.related_word(blob(4, 9), maps, positives)
    assert positives[choice.index] == "woman" and choice.reason.startswith("map correlation")
    # "a" correlates with the face too, but is never a candidate
    assert related.pearson(blob(4, 9), maps[:1]).item() > 0.5


def test_r_i_is_pearson_correlation_not_a_dot_product():
    shape = torch.rand(8, 8, generator=torch.Generator().manual_seed(2))
    bright = torch.rand(8, 8, generator=torch.Generator().manual_seed(3)) + 10.0
    negative = shape * 3 + 1
    assert (negative.flatten() @ bright.flatten()) > (negative.flatten() @ shape.flatten())
    assert related.related_word(negative, torch.stack([shape, bright]), ["circle", "square"]).index == 0


def test_tied_maps_fall_back_to_the_text_embeddings():
    same = blob(8, 8)
    maps = torch.stack([same, same + 1e-4 * blob(2, 2)])
    embeddings = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    choice = related.related_word(blob(8, 8), maps, ["circle", "square"], torch.tensor([0.5, 0.9]), embeddings)
    assert choice.index == 1 and choice.reason.startswith("text embedding cosine")


def test_rule_a_is_the_onset_relative_to_r_t_own_start():
    """The old rule (a fraction of the peak) opens at step 0 when r_t starts near its peak; the onset does not."""
    curve = [0.99, 0.99, 1.0, 1.1, 1.3, 1.5, 1.5, 1.4]
    assert gates.onset(curve, 0.5) == 4 and gates.onset(curve, 0.1) == 3
    assert gates.onset([NAN, NAN, 1.0, 1.2, 1.0], 0.5) == 3
    assert gates.onset([1.2, 1.1, 1.0], 0.5) == 0  # never rises: from the start
    with pytest.raises(ValueError):
        gates.onset([NAN], 0.5)


def test_rule_b_is_the_positives_lock_on():
    final = torch.stack([blob(4, 4), blob(10, 10)])
    maps = torch.stack([torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(t)) * (1 - t / 5) + final * t / 5
                        for t in range(6)])
    step = gates.lock_on(maps, 0.9)
    assert 0 < step < 5
    assert all(related.pearson(maps[step, w], final[w:w + 1]).item() > 0.8 for w in range(2))


def test_rule_c_settles_when_the_low_pass_layout_stops_moving():
    base = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    moving = [base * 0 + torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(t)) for t in range(3)]
    settled = [base + 0.001 * torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(9 + t))
               for t in range(4)]
    x0 = moving + settled
    changes = [math.inf] + [online.layout_change(a, b).item() for a, b in zip(x0, x0[1:], strict=False)]
    assert online.settle(changes, 0.05) == 5  # step 4 is the first below ε: the negative opens at step 5
    assert online.settle(changes, 0.05, earliest=6) == 7
    assert online.settle(changes, 1e-9) == len(changes)  # never
    watch = online.LayoutWatch(0.05, earliest=1)
    for step, x in enumerate(x0):
        watch.update(step, x)
    assert watch.opened_at == 5 and watch.is_open(5) and not watch.is_open(4)


def test_r_i_is_the_same_word_else_the_head_noun_of_the_first_phrase():
    """'professional office woman' / 'glasses': r(i) is woman, the prompt's subject, even where a map of another
    word correlates better; a word the positive has is its own r(i); another language falls back to the maps."""
    positives = ["a", "professional", "office", "woman", "at", "a", "desk"]
    maps = torch.stack([blob(4, 8)] * 3 + [blob(12, 4), blob(4, 8), blob(4, 8), blob(4, 9)])
    choice = related.choose("glasses", blob(4, 9), maps, positives)
    assert positives[choice.index] == "woman" and choice.reason == "the head noun of the positive's first phrase"
    assert positives[related.choose("desk", blob(4, 9), maps, positives).index] == "desk"
    assert [related.head_noun(w) for w in (["a", "red", "circle", "with", "eyes"], ["a", "the"])] == [2, None]
    french = ["une", "femme", "avec", "des", "lunettes"]
    french_maps = torch.stack([blob(2, 2), blob(4, 9), blob(2, 2), blob(2, 2), blob(12, 12)])
    choice = related.choose("chapeau", blob(4, 9), french_maps, french)
    assert french[choice.index] == "femme" and choice.reason.startswith("map correlation")
