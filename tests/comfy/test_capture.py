"""The attention capture on the tiny SD1 UNet: exact maps, bit-identical samples, separated branches, every LCM copy
counted, only the guidance's own evaluation recorded, bounded memory."""

import math

import pytest
import torch
from comfy_helpers import Recorder, assert_memory_stays_flat, call_node, pack_module, patched

TEXT, NEGATIVE = "a photo of a cat", "blurry, dog"
CAPTURE = dict(positive_words="", negative_words="", special_tokens=False, max_mb=64.0, over_cap="error")


def capture(model, clip, positive=TEXT, negative=NEGATIVE, **inputs):
    """AttentionCapture's outputs: (MODEL, handle, positive, negative)."""
    return call_node("AttentionCapture", model=model, clip=clip, positive_text=positive, negative_text=negative,
                     **CAPTURE | inputs)


def store_of(handle):
    return handle.recorder.finished


def run(t, model, p, n, steps=4, cfg=7.0, sampler="euler"):
    import comfy.sample

    return comfy.sample.sample(model, t.noise, steps, cfg, sampler, "normal", p, n, t.latent, seed=42,
                               disable_pbar=True)


def test_every_column_captured_sums_to_one(tiny):
    """All words plus <bos>, <eos> and <pad> cover the 77 columns: each pixel's maps sum to 1 over them."""
    model, handle, p, n = capture(tiny.model(), tiny.clip, negative="blurry dog", special_tokens=True)
    run(tiny, model, p, n)
    store = store_of(handle)
    assert handle.words["positive"] == ["a", "photo", "of", "cat", "<bos>", "<eos>", "<pad>"]
    assert store.steps() == [0, 1, 2, 3] and len(store.layers(0, "positive")) == 7
    for step in store.steps():
        for branch in ("positive", "negative"):
            for layer, maps in store.layers(step, branch).items():
                assert maps.shape == (2, len(handle.words[branch]), *layer.grid)
                torch.testing.assert_close(maps.float().sum(1), torch.ones(2, *layer.grid), rtol=0, atol=4e-3)


def sampled_both_ways(t, model, clip, how):
    """The same run uncaptured and captured, through KSampler, CFGGuider, our guider or our patch."""
    import comfy.samplers

    outs = []
    for captured in (False, True):
        p, n = t.p, t.n
        m = model
        if captured:
            m, _, p, n = capture(model, clip)
        if how == "ksampler":
            outs.append(run(t, m, p, n))
        elif how == "patch":
            outs.append(run(t, patched(t, m, empty=None, clip=clip), p, n))
        else:
            if how == "cfg_guider":
                guider = call_node("CFGGuider", model=m, positive=p, negative=n, cfg=7.0)[0]
            else:
                guider = call_node("NegativeGuidanceGuider", model=m, positive=p, negative=n, cfg=7.0, clip=clip,
                                   mode="independent", neg_scale=3.0, neg_start=0.5, neg_end=1.0,
                                   window_unit="steps", neg_schedule="constant")[0]
            sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 4)
            outs.append(guider.sample(t.noise, t.latent, comfy.samplers.sampler_object("euler"), sigmas, seed=42))
    return outs


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("how", ["ksampler", "cfg_guider", "our_guider", "patch"])
def test_captured_samples_are_bit_identical_to_uncaptured(tiny, dtype, how):
    import tiny as tiny_models

    plain, captured = sampled_both_ways(tiny, tiny_models.tiny_model(0, dtype), tiny.clip, how)
    assert torch.equal(plain, captured)


def test_an_attention_override_installed_before_keeps_running_on_captured_layers(tiny):
    """A sage/flash selector (optimized_attention_override) still computes every captured layer's output."""
    calls = []

    def override(func, *args, **kwargs):
        calls.append(args[0].shape)
        return func(*args, **kwargs)

    model = tiny.model().clone()
    model.model_options.setdefault("transformer_options", {})["optimized_attention_override"] = override
    plain = run(tiny, model, tiny.p, tiny.n)
    plain_calls = len(calls)
    captured_model, _, p, n = capture(model, tiny.clip)
    captured = run(tiny, captured_model, p, n)
    assert plain_calls == 4 * 14 and len(calls) == 2 * plain_calls  # 7 self + 7 cross layers per call
    assert torch.equal(plain, captured)


def test_one_record_per_step_with_heun(tiny):
    model, handle, p, n = capture(tiny.model(), tiny.clip)
    run(tiny, model, p, n, sampler="heun", steps=5)
    assert store_of(handle).steps() == [0, 1, 2, 3, 4]


def alone(t, text, word):
    """Step 0 maps of ``word`` when ``text`` is the only cond of its batch (CFGGuider at cfg 1): {layer: maps}."""
    import comfy.samplers

    model, handle, p, _ = capture(t.model(), t.clip, positive=text, negative="", positive_words=word)
    guider = call_node("CFGGuider", model=model, positive=p, negative=p, cfg=1.0)[0]
    sigmas = comfy.samplers.calculate_sigmas(t.model().get_model_object("model_sampling"), "normal", 4)
    guider.sample(t.noise, t.latent, comfy.samplers.sampler_object("euler"), sigmas, seed=42)
    return store_of(handle).layers(0, "positive"), store_of(handle).layers(0, "positive", "scores")


def chunks(k: int) -> str:
    """A prompt of k 77-token chunks (75 pieces each) whose first word is 'dog'."""
    return "dog " + "bird " * (75 * k - 1)


@pytest.mark.parametrize("other_chunks", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("batch", ["stock_cfg", "eq8"])
def test_maps_and_r_t_do_not_depend_on_the_other_prompts_length(tiny, other_chunks, batch):
    """ComfyUI repeats the shorter context up to the batch's LCM (ratio ≤ 4, else separate calls): the 1-chunk
    positive's maps, and r_t of the k-chunk negative's 'dog' against 'cat', equal the prompts' maps alone."""
    negative = chunks(other_chunks)
    model, handle, p, n = capture(tiny.model(), tiny.clip, negative=negative, positive_words="cat",
                                  negative_words="dog")
    assert n[0][0].shape[1] == 77 * other_chunks
    if batch == "eq8":
        model = patched(tiny, model, empty=None, clip=tiny.clip)
    run(tiny, model, p, n)
    store = store_of(handle)
    positive_alone, positive_scores = alone(tiny, TEXT, "cat")
    negative_alone, negative_scores = alone(tiny, negative, "dog")
    for reference, branch in ((positive_alone, "positive"), (negative_alone, "negative")):
        ours = store.layers(0, branch)
        assert ours.keys() == reference.keys()
        for layer in ours:
            torch.testing.assert_close(ours[layer].float(), reference[layer].float(), rtol=0, atol=1e-3)
    report = pack_module("attention.analysis").analyse(store, handle.words, "frobenius", 0.5, {"dog": "cat"})
    column = 0
    expected = (sum(s[:, 0, column] for s in negative_scores.values())
                / sum(s[:, 0, column] for s in positive_scores.values()))
    torch.testing.assert_close(torch.tensor([r[0] for r in report.curves[0].per_image], dtype=torch.float64),
                               expected.double(), rtol=1e-5, atol=0)


def test_branches_of_a_three_cond_batch_are_separated(tiny):
    """Step 0 maps of p and n inside the eq. 8 batch [p, n, u] equal each prompt's maps alone."""
    model, handle, p, n = capture(tiny.model(), tiny.clip, positive_words="cat", negative_words="dog")
    run(tiny, patched(tiny, model, empty=None, clip=tiny.clip), p, n)
    store = store_of(handle)
    for branch, (text, word) in (("positive", (TEXT, "cat")), ("negative", (NEGATIVE, "dog"))):
        reference = alone(tiny, text, word)[0]
        for layer, maps in store.layers(0, branch).items():
            torch.testing.assert_close(maps.float(), reference[layer].float(), rtol=0, atol=1e-3)


@pytest.mark.parametrize("node, inputs, atol", [("PerturbedAttentionGuidance", dict(scale=3.0), 0.0),
                                                ("SelfAttentionGuidance", dict(scale=0.5, blur_sigma=2.0), 2e-3)])
def test_extra_passes_of_other_hooks_are_never_recorded(tiny, node, inputs, atol):
    """PAG re-runs the positive and SAG the negative after CFG: the capture keeps the guidance's own evaluation of
    each branch. At step 0 both runs see the same input: PAG's maps are identical; SAG's attn1 replace of the middle
    block computes that layer's self-attention its own way, so later layers move by float rounding only (its
    re-run of the negative, if recorded as the positive, would change the maps entirely)."""
    model, handle, p, n = capture(tiny.model(), tiny.clip)
    run(tiny, model, p, n)
    plain = store_of(handle)
    hooked = call_node(node, model=tiny.model(), **inputs)[0]
    model, handle, p, n = capture(hooked, tiny.clip)
    run(tiny, model, p, n)
    with_hook = store_of(handle)
    assert with_hook.records.keys() == plain.records.keys()
    for key in (k for k in plain.records if k[0] == 0):
        torch.testing.assert_close(with_hook.records[key], plain.records[key], rtol=0, atol=atol, msg=str(key))


def test_a_later_node_that_replaces_a_hook_is_refused_before_sampling(tiny):
    model, _, p, n = capture(tiny.model(), tiny.clip)
    replaced = model.clone()
    replaced.set_model_attn2_replace(lambda q, k, v, extra: v, "middle", 0)
    lost = "^AttentionCapture: a node applied after AttentionCapture replaced the attention hook"
    with pytest.raises(ValueError, match=lost):
        run(tiny, replaced, p, n)
    shadowed = model.clone()  # an IP-Adapter's key: one transformer index, looked up before the block's own
    shadowed.set_model_attn2_replace(lambda q, k, v, extra: v, "middle", 0, 0)
    with pytest.raises(ValueError, match=lost + r" \('attn2', \('middle', 0, 0\)\)"):  # the layer was silently lost
        run(tiny, shadowed, p, n)


def test_capture_never_leaks_into_the_source_model(tiny):
    model = tiny.model()
    before = repr(model.model_options), repr(model.wrappers)
    captured, _, p, n = capture(model, tiny.clip)
    run(tiny, captured, p, n)
    assert (repr(model.model_options), repr(model.wrappers)) == before
    assert "patches_replace" not in model.model_options.get("transformer_options", {})



def test_captures_in_a_row_do_not_grow_memory(tiny):
    """Each capture's recorder dies with its patched model: 20 runs hold at most one run's worth of memory."""
    model = tiny.model()

    def once():
        captured, handle, p, n = capture(model, tiny.clip)
        run(tiny, captured, p, n)
        return handle

    assert_memory_stays_flat(once)


def test_capture_works_on_an_sdxl_shaped_model(tiny):
    """Two text encoders (context 2048), pooled adm, two transformer blocks per layer."""
    import tiny as tiny_models

    clip, model = tiny_models.tiny_sdxl_clip(), tiny_models.tiny_sdxl_model()
    captured, handle, p, n = capture(model, clip, positive="professional office woman", negative="glasses")
    assert p[0][0].shape == (1, 77, 2048) and p[0][1]["pooled_output"].shape == (1, 1280)
    assert torch.equal(run(tiny, captured, p, n), run(tiny, model, p, n))
    layers = store_of(handle).layers(0, "negative")
    assert {layer.index for layer in layers} == {0, 1}
    assert list(layers) == pack_module("nodes.families.unet").layers(model.model.diffusion_model, (8, 8))


TEN_WORDS = ("a professional office woman with red hair at her desk", "glasses hat scarf blur noise dark ugly text "
             "frame watermark")


def test_fifty_steps_of_a_512_image_with_ten_words_each_fit_the_default_cap(tiny):
    """SD1.5's 16 cross-attention layers at a 64×64 latent, two 10-word prompts, 50 steps: ≤ 50 MB stored.

    Native fp16 would take 53.9 MB, so the planner pools the one largest layer and keeps the other 15 native."""
    import tiny as tiny_models

    import comfy.sample

    unet = pack_module("nodes.families.unet")
    model = tiny_models.tiny_sd15_layout_model().clone()
    for block in {layer.block for layer in unet.layers(model.model.diffusion_model, (1, 1))}:
        model.set_model_attn1_replace(lambda q, k, v, extra: v, *block)  # self-attention (4096² maps) off: speed
    captured, handle, p, n = capture(model, tiny.clip, *TEN_WORDS, max_mb=50.0, over_cap="downsample")
    assert [len(words) for words in handle.words.values()] == [10, 10]
    latent = torch.zeros(1, 4, 64, 64)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    comfy.sample.sample(captured, noise, 50, 7.0, "euler", "normal", p, n, latent, seed=0, disable_pbar=True)
    store = store_of(handle)
    assert store.steps() == list(range(50)) and store.nbytes <= 50e6
    layers = unet.layers(model.model.diffusion_model, (64, 64))
    assert list(store.layers(0, "positive")) == layers and len(layers) == 16
    assert sorted(store.pool.values()) == [2]  # one layer at 32×32, the rest native


def test_over_the_cap_the_capture_stops_before_sampling_or_downsamples(tiny):
    every = dict(negative="blurry dog", special_tokens=True)  # every column captured: maps sum to 1
    model, handle, p, n = capture(tiny.model(), tiny.clip, **every)
    run(tiny, model, p, n)
    reference = store_of(handle)
    mb = reference.nbytes / 2**20
    model, _, p, n = capture(tiny.model(), tiny.clip, **every, max_mb=mb / 2)
    with pytest.raises(ValueError, match=r"^AttentionCapture: input 'max_mb': the maps of this run need .* MiB at "
                                         r"native resolution, over the cap"):
        run(tiny, model, p, n)
    model, handle, p, n = capture(tiny.model(), tiny.clip, **every, max_mb=mb / 3, over_cap="downsample")
    run(tiny, model, p, n)
    store = store_of(handle)
    assert 0 < store.nbytes <= mb / 3 * 2**20 and store.pool and store.records.keys() == reference.records.keys()
    for key, maps in store.records.items():
        factor = store.pool.get(key[1], 1)
        assert maps.shape[-2:] == tuple(math.ceil(s / factor) for s in key[1].grid)
        torch.testing.assert_close(maps.float().sum(1), torch.ones(2, *maps.shape[-2:]), rtol=0, atol=4e-3)
        torch.testing.assert_close(store.scores[key], reference.scores[key])  # r_t reads the native maps


def test_the_planned_layers_are_the_recorded_ones_at_odd_latent_sizes(tiny):
    import comfy.sample

    model, handle, p, n = capture(tiny.model(), tiny.clip)
    latent = torch.zeros(1, 4, 9, 7)
    comfy.sample.sample(model, torch.randn(latent.shape), 2, 7.0, "euler", "normal", p, n, latent, seed=0,
                        disable_pbar=True)
    expected = pack_module("nodes.families.unet").layers(tiny.model().model.diffusion_model, (9, 7))
    assert list(store_of(handle).layers(0, "positive")) == expected


def test_nested_latents_are_refused_before_the_first_step(tiny):
    """Since v0.33 nested latents (LTX-2's video and audio) reach the wrappers packed, their shapes in
    ``latent_shapes``: the capture names them and stops before the model is called."""
    nested = pytest.importorskip("comfy.nested_tensor", reason="this ComfyUI has no nested latents (v0.33 on)")
    import comfy.sample

    model, _, p, n = capture(tiny.model(), tiny.clip)
    recorder = Recorder()
    model.set_model_unet_function_wrapper(recorder)
    latent = nested.NestedTensor([torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 4, 4)])
    noise = nested.NestedTensor([torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4)])
    with pytest.raises(ValueError, match=r"AttentionCapture: the sampler's latent holds 2 latents sampled together "
                                         r"\(\(1, 4, 8, 8\), \(1, 4, 4, 4\)\)"):
        comfy.sample.sample(model, noise, 2, 7.0, "euler", "normal", p, n, latent, seed=0, disable_pbar=True)
    assert recorder.calls == []


def test_a_sampler_that_picks_its_own_steps_is_refused_before_the_first_step(tiny):
    """dpm_fast and dpm_adaptive get the schedule's ends only: a capture recorded step 0 and AttentionRt returned a
    one-point r_t for a 4-step run."""
    for sampler in ("dpm_fast", "dpm_adaptive"):
        model, _, p, n = capture(tiny.model(), tiny.clip)
        recorder = Recorder()
        model.set_model_unet_function_wrapper(recorder)
        with pytest.raises(ValueError, match=f"^AttentionCapture: the sampler {sampler} picks its own steps"):
            run(tiny, model, p, n, sampler=sampler)
        assert recorder.calls == []


def test_a_capture_under_tiled_sampling_stops_with_a_clear_error(tiny):
    """A node that samples the latent in tiles (a function wrapper calling the model on each half) puts the captured
    prompt on part of the latent, where its maps would be a tile's: the run stops at the first such layer, naming
    the cause, rather than storing the tile's maps as the picture's."""
    model, _, p, n = capture(tiny.model(), tiny.clip)

    def in_tiles(apply_model, args):
        halves = args["input"].chunk(2, dim=-1)
        return torch.cat([apply_model(half, args["timestep"], **args["c"]) for half in halves], dim=-1)

    tiled = model.clone()
    tiled.set_model_unet_function_wrapper(in_tiles)
    with pytest.raises(RuntimeError, match=r"^AttentionCapture: a captured prompt ran on part of the latent "
                                           r"\(\(8, 4\) of \(8, 8\)\): a node samples the latent in tiles"):
        run(tiny, tiled, p, n)
