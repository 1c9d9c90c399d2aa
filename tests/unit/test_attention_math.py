"""Unit tests of attention/ alone: recomputed maps and the r_t metrics."""

import math

import pytest
import torch
from negative_guidance.attention import (
    AttentionStore,
    LayerId,
    attention_probs,
    map_scores,
    r_curve,
    r_t,
    related_token,
    score_index,
    suggested_start,
    word_maps,
)
from negative_guidance.attention.store import pooled_pixels, pooling_plan


@pytest.fixture
def qk():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 64, 4 * 8, generator=g), torch.randn(2, 77, 4 * 8, generator=g)


def test_maps_sum_to_one_over_the_keys(qk):
    probs = attention_probs(*qk, heads=4)
    assert probs.shape == (2, 64, 77)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 64))


def test_chunking_does_not_change_the_maps(qk):
    torch.testing.assert_close(attention_probs(*qk, heads=4, chunk=7), attention_probs(*qk, heads=4))


def test_attention_output_matches_scaled_dot_product(qk):
    q, k = qk
    v = torch.randn_like(k)
    heads, d = 4, 8
    split = lambda t: t.reshape(2, -1, heads, d).transpose(1, 2)  # noqa: E731
    sdpa = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
    per_head = (split(q) @ split(k).transpose(-1, -2) * d**-0.5).softmax(-1)
    torch.testing.assert_close(per_head @ split(v), sdpa, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(per_head.mean(1), attention_probs(q, k, heads))


def test_word_maps_sum_pieces(qk):
    probs = attention_probs(*qk, heads=4)
    maps = word_maps(probs, [[1], [2, 3]], 8, 8)
    assert maps.shape == (2, 2, 8, 8)
    torch.testing.assert_close(maps[:, 1].flatten(1), probs[..., 2] + probs[..., 3])


def test_scores():
    a = torch.full((3, 4, 4), 0.5)
    torch.testing.assert_close(map_scores(a), torch.tensor([[2.0, 0.25]] * 3))
    with pytest.raises(ValueError, match="score must be one of"):
        score_index("l1")


def test_equal_scores_give_r_equal_one():
    g = torch.Generator().manual_seed(1)
    layers = {t: torch.rand(2, generator=g).tolist() for t in range(5)}
    assert r_curve(layers, layers, range(5)) == pytest.approx([1.0] * 5)
    assert math.isnan(r_curve({0: []}, layers, [0])[0])
    assert math.isnan(r_t([1.0], [0.0]))


def test_related_token_is_the_best_correlated_map():
    g = torch.Generator().manual_seed(2)
    positives = torch.rand(3, 8, 8, generator=g)
    assert related_token(positives[2] * 3 + 1, positives) == 2


def test_suggested_start():
    assert suggested_start([0.1, 0.3, 0.6, 1.0, 0.8]) == 2
    assert suggested_start([0.1, float("nan"), 0.9], fraction=0.9) == 2
    with pytest.raises(ValueError):
        suggested_start([float("nan")])


def test_prompt_words_drop_weight_syntax():
    from negative_guidance.attention.tokens import prompt_words

    assert prompt_words("a man wearing (glasses:1.2), Smiling man, (red:.8) don't") == [
        "a", "man", "wearing", "glasses", "smiling", "red", "don't",
    ]


def test_find_columns_sums_pieces_and_occurrences():
    from negative_guidance.attention.tokens import find_columns

    rows = [[49406, 5, 6, 7, 5, 6, 49407, 49407], [49406, 5, 6, 49407, 49407, 49407, 49407, 49407]]
    assert find_columns(rows, [5, 6]) == [1, 2, 4, 5, 9, 10]
    assert find_columns(rows, [8]) == []


def test_store_series_fills_missing_steps_with_zeros():
    from negative_guidance.attention import AttentionStore

    store = AttentionStore(2**20)
    store.add_effect(0, 14.6, "negative", torch.ones(2, 4, 4))
    store.add_effect(2, 5.0, "other", torch.ones(2, 4, 4))
    series = store.series(lambda t: store.effects.get((t, "negative")))
    assert series.shape == (2, 4, 4)  # steps 0 and 2 were recorded
    assert series[0].sum() == 16 and series[1].sum() == 0


SD15_AT_64 = [LayerId(("input", i), 0, s, s) for i, s in ((1, 64), (2, 64), (4, 32), (5, 32), (7, 16), (8, 16))] + [
    LayerId(("middle", 0), 0, 8, 8)] + [LayerId(("output", i), 0, s, s) for i, s in
                                       ((3, 16), (4, 16), (5, 16), (6, 32), (7, 32), (8, 32), (9, 64), (10, 64),
                                        (11, 64))]


def test_pooling_plan_halves_the_largest_maps_until_the_run_fits():
    per_pixel = 2 * 20 * 50  # fp16 × 20 words × 50 steps
    assert per_pixel * sum(layer.height * layer.width for layer in SD15_AT_64) == 53_888_000
    plan = pooling_plan(SD15_AT_64, per_pixel, 50 * 2**20)
    assert plan == {SD15_AT_64[0]: 2}
    assert pooling_plan(SD15_AT_64, per_pixel, 54 * 10**6) == {}
    tight = pooling_plan(SD15_AT_64, per_pixel, 10 * 2**20)
    assert per_pixel * sum(pooled_pixels(layer, tight.get(layer, 1)) for layer in SD15_AT_64) <= 10 * 2**20
    with pytest.raises(MemoryError, match="even 1×1 maps"):
        pooling_plan(SD15_AT_64, per_pixel, 1000)


def test_the_store_refuses_a_run_over_its_cap_or_a_record_past_it():
    with pytest.raises(MemoryError, match="need 51.4 MB at native resolution, over the cap of 50.0 MB"):
        AttentionStore(50 * 2**20, downsample=False).plan(SD15_AT_64, 20, 50)
    store = AttentionStore(100)
    with pytest.raises(MemoryError, match="exceed its cap"):
        store.add(0, 1.0, SD15_AT_64[0], "positive", torch.rand(1, 1, 8, 8))
    assert not store.records
