"""Unit tests of attention/ alone: recomputed maps, word columns, the bounded store and the r_t metrics."""

import math
from operator import attrgetter

import pytest
import torch
from pack import attention

AttentionStore, LayerId, column_matrix, map_scores, r_t, score_index, text_attention, word_maps = attrgetter(
    "AttentionStore", "LayerId", "column_matrix", "map_scores", "r_t", "score_index", "text_attention",
    "word_maps")(attention)
store_module = attention.store


@pytest.fixture
def qk():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 64, 4 * 8, generator=g), torch.randn(2, 77, 4 * 8, generator=g)


def reference(q, k, heads):
    """softmax(QKᵀ/√d) per head, averaged over heads, written out."""
    b, n, width = q.shape
    split = lambda t: t.reshape(b, -1, heads, width // heads).transpose(1, 2)  # noqa: E731
    return (split(q) @ split(k).transpose(-1, -2) / math.sqrt(width // heads)).softmax(-1).mean(1)


def test_cross_attention_maps_are_the_softmax_over_the_keys(qk):
    probs = text_attention(*qk, heads=4, queries=slice(None), keys=slice(None))
    assert probs.shape == (2, 64, 77)
    torch.testing.assert_close(probs, reference(*qk, 4))
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 64))
    torch.testing.assert_close(text_attention(*qk, 4, slice(None), slice(None), chunk=7), probs)


def test_joint_attention_maps_are_the_image_rows_over_the_text_keys(qk):
    """[text, image] joint q/k in either layout: the image queries' softmax restricted to the text keys."""
    q_img, k_txt = qk
    g = torch.Generator().manual_seed(1)
    q = torch.cat([torch.randn(2, 77, 32, generator=g), q_img], 1)
    k = torch.cat([k_txt, torch.randn(2, 64, 32, generator=g)], 1)
    expected = reference(q_img, k_txt, 4)
    torch.testing.assert_close(text_attention(q, k, 4, slice(77, None), slice(0, 77)), expected)
    split = lambda t: t.view(2, -1, 4, 8).transpose(1, 2)  # noqa: E731
    torch.testing.assert_close(text_attention(split(q), split(k), 4, slice(77, None), slice(0, 77), True), expected)


def test_repeated_contexts_give_the_same_word_maps(qk):
    """ComfyUI repeats a shorter context up to the LCM of a batch: counting every copy gives the same maps."""
    q, k = qk
    columns = [(1,), (2, 3), (76,)]
    once = word_maps(text_attention(q, k, 4, slice(None), slice(None)), column_matrix(columns, 77, 77), (8, 8))
    for copies in (2, 3, 4):
        repeated = text_attention(q, k.repeat(1, copies, 1), 4, slice(None), slice(None))
        maps = word_maps(repeated, column_matrix(columns, 77, 77 * copies), (8, 8))
        torch.testing.assert_close(maps, once, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not a repeat"):
        column_matrix(columns, 77, 100)


def test_word_maps_sum_their_pieces_into_the_grid(qk):
    probs = text_attention(*qk, 4, slice(None), slice(None))
    maps = word_maps(probs, column_matrix([(1,), (2, 3)], 77, 77), (8, 8))
    assert maps.shape == (2, 2, 8, 8)
    torch.testing.assert_close(maps[:, 1].flatten(1), probs[..., 2] + probs[..., 3])
    video = word_maps(probs, column_matrix([(5,)], 77, 77), (4, 4, 4))
    torch.testing.assert_close(video.flatten(2), probs[..., 5][:, None])


def test_scores_cover_the_whole_grid_frames_included():
    a = torch.full((1, 3, 4, 4), 0.5)
    torch.testing.assert_close(map_scores(a), torch.tensor([[[2.0, 0.25]] * 3]))
    video = torch.full((1, 1, 2, 4, 4), 0.5)
    torch.testing.assert_close(map_scores(video), torch.tensor([[[2.0 * math.sqrt(2), 0.25]]]))
    with pytest.raises(ValueError, match="score must be one of"):
        score_index("l1")


def test_r_t_is_a_ratio_of_sums():
    assert r_t([1.0, 2.0], [1.5, 1.5]) == 1.0
    assert math.isnan(r_t([1.0], [0.0]))


def layer(block, size):
    return LayerId(block, 0, (size, size))


def test_a_step_stays_on_the_device_until_the_next_begins_and_a_later_call_replaces_an_earlier():
    store = AttentionStore(2**20)
    first, second = layer(("input", 1), 4), layer(("middle", 0), 2)
    store.begin_step(0, 14.6)
    store.add(first, "positive", torch.full((1, 2, 4, 4), 1.0))
    store.add(first, "positive", torch.full((1, 2, 4, 4), 0.5))  # Heun's predictor after the corrector
    store.add_effect("negative", torch.ones(1, 8, 8))
    assert not store.records and store.pending_maps
    store.begin_step(1, 5.0)
    store.add(second, "negative", torch.full((1, 2, 2, 2), 0.25))
    store.flush()
    assert set(store.records) == {(0, first, "positive"), (1, second, "negative")}
    assert store.records[(0, first, "positive")].dtype == torch.float16
    assert (store.records[(0, first, "positive")] == 0.5).all()
    torch.testing.assert_close(store.scores[(0, first, "positive")], map_scores(torch.full((1, 2, 4, 4), 0.5)))
    assert store.effects[(0, "negative")].shape == (1, 8, 8)
    assert store.nbytes == 2 * (32 + 8 + 64) and store.steps() == [0, 1]


def test_store_series_fills_missing_steps_with_zeros():
    store = AttentionStore(2**20)
    for step, term in ((0, "negative"), (2, "other")):
        store.begin_step(step, 1.0)
        store.add_effect(term, torch.ones(2, 4, 4))
    store.flush()
    series = store.series(lambda t: store.effects.get((t, "negative")))
    assert series.shape == (2, 2, 4, 4)  # steps 0 and 2 were recorded
    assert series[0].sum() == 32 and series[1].sum() == 0


SD15_AT_64 = [layer(("input", i), s) for i, s in ((1, 64), (2, 64), (4, 32), (5, 32), (7, 16), (8, 16))] + [
    layer(("middle", 0), 8)] + [layer(("output", i), s) for i, s in
                                ((3, 16), (4, 16), (5, 16), (6, 32), (7, 32), (8, 32), (9, 64), (10, 64), (11, 64))]


def test_pooling_plan_halves_the_largest_maps_until_the_run_fits():
    per_pixel = 2 * 20 * 50  # fp16 × 20 words × 50 steps
    assert per_pixel * sum(math.prod(layer.grid) for layer in SD15_AT_64) == 53_888_000
    plan = store_module.pooling_plan(SD15_AT_64, per_pixel, 50 * 2**20)
    assert plan == {SD15_AT_64[0]: 2}
    assert store_module.pooling_plan(SD15_AT_64, per_pixel, 54 * 10**6) == {}
    tight = store_module.pooling_plan(SD15_AT_64, per_pixel, 10 * 2**20)
    assert per_pixel * sum(store_module.pooled_pixels(x, tight.get(x, 1)) for x in SD15_AT_64) <= 10 * 2**20
    with pytest.raises(MemoryError, match="even 1×1 maps"):
        store_module.pooling_plan(SD15_AT_64, per_pixel, 1000)


def test_video_maps_pool_only_their_spatial_dims():
    frames = LayerId(("double_block", 0), 0, (3, 16, 16))
    plan = store_module.pooling_plan([frames], 2, 2 * 3 * 8 * 8)
    assert plan == {frames: 2} and store_module.pooled_grid(frames.grid, 2) == (3, 8, 8)
    pooled = store_module.pool(torch.ones(1, 2, 3, 16, 16), 2)
    assert pooled.shape == (1, 2, 3, 8, 8)


def test_the_effect_maps_count_against_the_cap():
    store = AttentionStore(50 * 2**20)
    store.plan(SD15_AT_64, 20, 50)
    assert store.pool == {SD15_AT_64[0]: 2}
    store.plan(SD15_AT_64, 20, 50, effect_pixels=2 * 6 * 64 * 64)  # 2 negatives × 6 images × 50 steps: 4.9 MB
    assert sorted(store.pool.values()) == [2, 2]
    with pytest.raises(MemoryError, match="over the cap"):
        AttentionStore(2**20, downsample=True).plan(SD15_AT_64, 20, 50, effect_pixels=10 * 64 * 64)


def test_the_store_refuses_a_run_over_its_cap_or_a_step_past_it():
    with pytest.raises(MemoryError, match="need 51.4 MiB at native resolution, over the cap of 50.0 MiB"):
        AttentionStore(50 * 2**20, downsample=False).plan(SD15_AT_64, 20, 50)
    store = AttentionStore(100)
    store.begin_step(0, 1.0)
    store.add(SD15_AT_64[0], "positive", torch.rand(1, 1, 8, 8))
    with pytest.raises(MemoryError, match="passed its cap"):
        store.flush()
