"""The attention capture patch on the tiny model: exact maps, unchanged samples, separated branches."""

import json
import math

import pytest
import torch
from comfy_helpers import call_node, pack_module, patched, sample
from negative_guidance.attention import AttentionStore

EVERY_TOKEN = [[j] for j in range(77)]
BIG = 2**30


def capture(model, store, branches=("positive", "negative")):
    from comfy_helpers import pack_module

    return pack_module("nodes.capture").capture_model(model, store, {b: EVERY_TOKEN for b in branches})


def test_every_layer_map_sums_to_one_over_the_keys(tiny):
    store = AttentionStore(BIG)
    sample(tiny, capture(tiny.model(), store))
    assert store.steps() == [0, 1, 2, 3]
    layers = store.layers(0, "positive")
    assert len(layers) == 7  # the tiny UNet's cross-attention layers
    for step in store.steps():
        for branch in ("positive", "negative"):
            for layer, maps in store.layers(step, branch).items():
                assert maps.shape == (2, 77, layer.height, layer.width)
                torch.testing.assert_close(maps.float().sum(1), torch.ones(2, layer.height, layer.width),
                                           rtol=0, atol=2e-2)


def test_capture_leaves_the_samples_unchanged(tiny):
    plain = sample(tiny, tiny.model())
    captured = sample(tiny, capture(tiny.model(), AttentionStore(BIG)))
    assert ((captured - plain).abs().max() / plain.abs().max()).item() <= 1e-4


def test_one_record_per_step_with_heun(tiny):
    store = AttentionStore(BIG)
    sample(tiny, capture(tiny.model(), store), sampler="heun", steps=5)
    assert store.steps() == [0, 1, 2, 3, 4]


def test_branches_of_a_three_cond_batch_are_separated(tiny):
    """Step 0 maps of p, n and u inside our eq. 8 batch equal the maps of each cond run alone."""
    store = AttentionStore(BIG)
    sample(tiny, capture(patched(tiny, tiny.model()), store, ("positive", "negative", "empty")))
    for branch, cond in (("positive", tiny.p), ("negative", tiny.n), ("empty", tiny.u)):
        alone = AttentionStore(BIG)
        guider = call_node("CFGGuider", model=capture(tiny.model(), alone, ("positive",)), positive=cond,
                           negative=cond, cfg=1.0)[0]
        import comfy.samplers

        sigmas = comfy.samplers.calculate_sigmas(tiny.model().get_model_object("model_sampling"), "normal", 4)
        guider.sample(tiny.noise, tiny.latent, comfy.samplers.sampler_object("euler"), sigmas, seed=42)
        ours, reference = store.layers(0, branch), alone.layers(0, "positive")
        assert ours.keys() == reference.keys()
        for layer in ours:
            torch.testing.assert_close(ours[layer].float(), reference[layer].float(), rtol=0, atol=2e-3)


def test_capturing_some_branches_of_a_batch_keeps_the_optimized_output_and_the_same_maps(tiny):
    """Only n captured in the p, n, u batch: the layer output stays ComfyUI's, n's maps equal the full capture's."""
    full, some = AttentionStore(BIG), AttentionStore(BIG)
    sampled = [sample(tiny, capture(patched(tiny, tiny.model()), store, branches))
               for store, branches in ((full, ("positive", "negative", "empty")), (some, ("negative",)))]
    plain = sample(tiny, patched(tiny, tiny.model()))
    for out in sampled:
        assert ((out - plain).abs().max() / plain.abs().max()).item() <= 1e-4
    assert {b for _, _, b in some.records} == {"negative"}
    for key, maps in some.records.items():
        torch.testing.assert_close(maps, full.records[key])


def test_capture_never_leaks_into_the_source_model(tiny):
    model = tiny.model()
    before = repr(model.model_options)
    sample(tiny, capture(model, AttentionStore(BIG)))
    assert repr(model.model_options) == before
    assert "patches_replace" not in model.model_options.get("transformer_options", {})


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_twenty_captures_in_a_row_do_not_grow_memory(tiny):
    """Each run's store dies with its patched model: 20 runs hold at most one store's worth of memory."""
    import gc
    import weakref

    model, run_bytes, stores = tiny.model(), [], []
    baseline = None
    for i in range(20):
        store = AttentionStore(BIG)
        sample(tiny, capture(model, store, ("positive", "negative")))
        run_bytes.append(store.nbytes)
        stores.append(weakref.ref(store))
        del store
        gc.collect()
        if i == 1:
            baseline = rss_bytes()
    assert all(ref() is None for ref in stores)
    assert rss_bytes() - baseline < 3 * max(run_bytes) + 8 * 2**20


def test_capture_works_on_an_sdxl_shaped_model(tiny):
    """Two text encoders (context 2048), pooled adm, two transformer blocks per layer."""
    import tiny as tiny_models

    import comfy.sample

    clip = tiny_models.tiny_sdxl_clip()
    p, n = tiny_models.encode(clip, "professional office woman"), tiny_models.encode(clip, "glasses")
    assert p[0][0].shape == (1, 77, 2048) and p[0][1]["pooled_output"].shape == (1, 1280)
    model = tiny_models.tiny_sdxl_model()
    plain = comfy.sample.sample(model, tiny.noise, 4, 7.0, "euler", "normal", p, n, tiny.latent, seed=42,
                                disable_pbar=True)
    captured, handle = call_node("AttentionCapture", model=model, clip=clip, positive_text="professional office woman",
                                 negative_text="glasses", positive_words="", negative_words="", special_tokens=False,
                                 max_mb=64.0, over_cap="error")
    out = comfy.sample.sample(captured, tiny.noise, 4, 7.0, "euler", "normal", p, n, tiny.latent, seed=42,
                              disable_pbar=True)
    assert ((out - plain).abs().max() / plain.abs().max()).item() <= 1e-4
    layers = handle.store.layers(0, "negative")
    assert {layer.index for layer in layers} == {0, 1}
    assert list(layers) == pack_module("nodes.capture").attn2_layers(model, 8, 8)
    for layer, maps in layers.items():
        assert maps.shape == (2, 1, layer.height, layer.width)
    data = call_node("AttentionRt", capture=handle, samples={}, score="frobenius", gate_fraction=0.5, related="",
                     filename_prefix="sdxl/rt")[0]
    assert json.loads(data)["curves"]["glasses"]["related"] in ("professional", "office", "woman")


TEN_WORDS = ("a professional office woman with red hair at her desk", "glasses hat scarf blur noise dark ugly text "
             "frame watermark")


def capture_node(model, clip, max_mb, over_cap, texts=("a photo of a cat", "blurry, dog")):
    return call_node("AttentionCapture", model=model, clip=clip, positive_text=texts[0], negative_text=texts[1],
                     positive_words="", negative_words="", special_tokens=False, max_mb=max_mb, over_cap=over_cap)


def test_fifty_steps_of_a_512_image_with_ten_words_each_fit_the_default_cap(tiny):
    """SD1.5's 16 cross-attention layers at a 64×64 latent, two 10-word prompts, 50 steps: ≤ 50 MB stored.

    Native fp16 would take 53.9 MB, so the planner pools the one largest layer and keeps the other 15 native."""
    import tiny as tiny_models

    import comfy.sample

    attn2_layers = pack_module("nodes.capture").attn2_layers
    model = tiny_models.tiny_sd15_layout_model().clone()
    for block in {layer.block for layer in attn2_layers(model, 1, 1)}:  # self-attention (4096² maps, 1 s/step) off
        model.set_model_attn1_replace(lambda q, k, v, extra: v, *block)
    p, n = (tiny_models.encode(tiny.clip, text) for text in TEN_WORDS)
    captured, handle = capture_node(model, tiny.clip, 50.0, "downsample", TEN_WORDS)
    assert [len(words) for words in handle.words.values()] == [10, 10]
    latent = torch.zeros(1, 4, 64, 64)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    comfy.sample.sample(captured, noise, 50, 7.0, "euler", "normal", p, n, latent, seed=0, disable_pbar=True)
    store = handle.store
    assert store.steps() == list(range(50))
    assert store.nbytes <= 50e6
    layers = attn2_layers(model, 64, 64)
    assert list(store.layers(0, "positive")) == layers and len(layers) == 16
    assert sorted(store.pool.values()) == [2]  # one layer at 32×32, the rest native


def test_over_the_cap_the_capture_stops_before_sampling_or_downsamples(tiny):
    reference = AttentionStore(BIG)
    sample(tiny, capture(tiny.model(), reference))
    cap_mb = reference.nbytes / 2**20 / 3
    words_only, handle = capture_node(tiny.model(), tiny.clip, 64.0, "error")
    sample(tiny, words_only)
    with pytest.raises(ValueError, match=r"AttentionCapture: input 'max_mb': the maps of this run need .* MB at "
                                         r"native resolution, over the cap"):
        sample(tiny, capture_node(tiny.model(), tiny.clip, handle.store.nbytes / 2**20 / 2, "error")[0])
    store = AttentionStore(int(cap_mb * 2**20))
    sample(tiny, capture(tiny.model(), store))
    assert 0 < store.nbytes <= cap_mb * 2**20 and store.pool
    assert store.records.keys() == reference.records.keys()
    for key, maps in store.records.items():
        layer, factor = key[1], store.pool.get(key[1], 1)
        assert maps.shape[-2:] == (math.ceil(layer.height / factor), math.ceil(layer.width / factor))
        torch.testing.assert_close(maps.float().sum(1), torch.ones(2, *maps.shape[-2:]), rtol=0, atol=2e-2)
        torch.testing.assert_close(store.scores[key], reference.scores[key])  # r_t reads the native maps


def test_the_planned_layers_are_the_recorded_ones_at_odd_latent_sizes(tiny):
    import comfy.sample

    store = AttentionStore(BIG)
    latent = torch.zeros(1, 4, 9, 7)
    comfy.sample.sample(capture(tiny.model(), store), torch.randn(latent.shape), 2, 7.0, "euler", "normal", tiny.p,
                        tiny.n, latent, seed=0, disable_pbar=True)
    assert list(store.layers(0, "positive")) == pack_module("nodes.capture").attn2_layers(tiny.model(), 9, 7)
