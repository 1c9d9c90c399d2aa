"""The attention capture patch on the tiny model: exact maps, unchanged samples, separated branches."""

import json

import pytest
import torch
from comfy_helpers import call_node, patched, sample
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


def test_the_cap_stops_with_a_clear_error(tiny):
    with pytest.raises(MemoryError, match="exceed its cap of 0.1 MB"):
        sample(tiny, capture(tiny.model(), AttentionStore(int(0.1 * 2**20))))


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
                                 max_mb=64.0)
    out = comfy.sample.sample(captured, tiny.noise, 4, 7.0, "euler", "normal", p, n, tiny.latent, seed=42,
                              disable_pbar=True)
    assert ((out - plain).abs().max() / plain.abs().max()).item() <= 1e-4
    layers = handle.store.layers(0, "negative")
    assert {layer.index for layer in layers} == {0, 1}
    for layer, maps in layers.items():
        assert maps.shape == (2, 1, layer.height, layer.width)
    data = call_node("AttentionRt", capture=handle, samples={}, score="frobenius", gate_fraction=0.5, related="",
                     filename_prefix="sdxl/rt")[0]
    assert json.loads(data)["curves"]["glasses"]["related"] in ("professional", "office", "woman")
