"""LTX-2 (LTXAV) on a tiny seeded model built from ComfyUI v0.33's own classes: a video and an audio latent sampled
together (a NestedTensor, which the sampler packs), Gemma 3 text through the model's two connectors. A Gemma 3
stand-in feeds its text encoder (tests/support/tiny_families.py ``Gemma3StandIn``).

Oracles: eq. 9 = KSampler, eq. 8 = DualCFGGuider, a percent gate = the ConditioningSetTimestepRange back-fill; the
four NAG equations on plain softmax attention (tests/comfy/test_nag.py ``nag_reference``) in each stream's text
call; a negative's keys and values = those of the same text given as the prompt. Skipped where ComfyUI has no LTX-2.
"""

import pytest
import torch
from comfy_helpers import call_node
from nag_oracle import attention, heads_first, nag_reference

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.parametrize("family", ["ltxav"])]

TEXT, NEGATIVE, OTHER, EMPTY = "a photo of a cat", "blurry dog", "red chair", ""
VIDEO, AUDIO = (2, 128, 1, 2, 3), (2, 8, 5, 16)  # 6 video tokens and 5 audio tokens per row
CONTEXT = 1024  # the connectors' context length, a prompt's and each negative's
OVERRIDE = "optimized_attention_override"
STREAM_OF_WIDTH = {64: "video", 32: "audio"}  # the q width of each stream's attention (heads · head dim)
PHI, TAU, ALPHA = 4.0, 2.5, 1.0


def encode(text):
    import tiny_families

    return tiny_families.encode(tiny_families.clip("ltxav"), text)


def guidance_cfg(model, terms=None):
    """NegativeGuidanceCFG in standard mode: at cfg 1 its main negative is off."""
    return call_node("NegativeGuidanceCFG", model=model, mode="standard", neg_scale=0.0, neg_start=0.0, neg_end=1.0,
                     window_unit="steps", neg_schedule="constant", terms=terms)[0]


def nested(*tensors):
    import comfy.nested_tensor

    return comfy.nested_tensor.NestedTensor(tensors)


def sample(model, p, n, steps=3, cfg=1.0, callback=None):
    import comfy.sample

    generator = torch.Generator().manual_seed(42)
    noise = nested(*(torch.randn(shape, generator=generator) for shape in (VIDEO, AUDIO)))
    latent = nested(torch.zeros(VIDEO), torch.zeros(AUDIO))
    out = comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", p, n, latent, seed=42, disable_pbar=True,
                              callback=callback)
    return flat(out)


def nested_of(samples):
    """Flat samples (``flat``) as the sampler's nested latent."""
    video = samples[:, :VIDEO[1] * VIDEO[2] * VIDEO[3] * VIDEO[4]]
    return nested(video.reshape(VIDEO), samples[:, video.shape[1]:].reshape(AUDIO))


def flat(latent):
    """A nested latent's video and audio side by side, flattened per row."""
    return torch.cat([x.flatten(1) for x in latent.unbind()], dim=1)


def term(conditioning, stream="all", scale=PHI, start=0.0, terms=None):
    return call_node("AttentionNegativeTerm", conditioning=conditioning, scale=scale, tau=TAU, alpha=ALPHA,
                     start=start, end=1.0, window_unit="steps", schedule="constant", terms=terms, stream=stream)[0]


def watched(model, record):
    """A clone whose attention override, chained over the pack's (above it, or below it when applied first), hands
    ``record(stream, q, k, v, out, options)`` every attention call of the model's blocks (q/k/v heads first)."""
    hooked = model.clone()
    options = hooked.model_options.setdefault("transformer_options", {})
    inner = options.get(OVERRIDE)

    def override(func, *args, **kwargs):
        out = inner(func, *args, **kwargs) if inner is not None else func(*args, **kwargs)
        q, k, v, heads = args[:4]
        stream = STREAM_OF_WIDTH.get(q.shape[-1])
        if stream is not None:
            record(stream, *(heads_first(x, heads, False) for x in (q, k, v)), out, kwargs["transformer_options"])
        return out

    override.__wrapped__ = inner
    hooked.model_options["transformer_options"] = {**options, OVERRIDE: override}
    return hooked


def first_text_calls(model, p, n, cfg=1.0):
    """The first call over a text context of each stream (keys a multiple of CONTEXT tokens), seen above the pack."""
    seen = {}

    def record(stream, q, k, v, out, options):
        if k.shape[2] % CONTEXT == 0 and stream not in seen:
            seen[stream] = (q, k, v, out)

    sample(watched(model, record), p, n, steps=1, cfg=cfg)
    return seen


def test_eq9_eq8_and_the_percent_gate_match_comfyui(family):
    """On the packed video and audio latent: standard mode = KSampler, eq. 8 = DualCFGGuider(p, u, n, s⁺, s⁻ + 1),
    a percent gate = KSampler with a ConditioningSetTimestepRange back-fill of u, bit for bit."""
    import tiny_families

    import comfy.samplers

    p, n, u = encode(TEXT), encode(NEGATIVE), encode(EMPTY)
    base = tiny_families.model(family)
    standard = call_node("NegativeGuidanceCFG", model=base, mode="standard", neg_scale=0.0, neg_start=0.0,
                         neg_end=1.0, window_unit="steps", neg_schedule="constant")[0]
    torch.testing.assert_close(sample(standard, p, n, cfg=5.0), sample(base, p, n, cfg=5.0), rtol=1e-5, atol=1e-6)

    def custom(guider):
        sigmas = comfy.samplers.calculate_sigmas(base.get_model_object("model_sampling"), "normal", 3)
        noise = torch.Generator().manual_seed(42)
        noise = nested(*(torch.randn(shape, generator=noise) for shape in (VIDEO, AUDIO)))
        out = guider.sample(noise, nested(torch.zeros(VIDEO), torch.zeros(AUDIO)),
                            comfy.samplers.sampler_object("euler"), sigmas, disable_pbar=True, seed=42)
        return flat(out)

    ours = call_node("NegativeGuidanceGuider", model=base, positive=p, negative=n, empty=u, mode="independent",
                     cfg=5.0, neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                     neg_schedule="constant")[0]
    dual = call_node("DualCFGGuider", model=base, cond1=p, cond2=u, negative=n, cfg_conds=5.0,
                     cfg_cond2_negative=4.0, style="regular")[0]
    eq8, oracle = custom(ours), custom(dual)
    assert ((eq8 - oracle).abs().max() / oracle.abs().max()).item() <= 1e-5
    gated = call_node("NegativeGuidanceCFG", model=base, empty=u, mode="standard", neg_scale=0.0, neg_start=0.45,
                      neg_end=1.0, window_unit="percent", neg_schedule="constant")[0]
    late_n = call_node("ConditioningSetTimestepRange", conditioning=n, start=0.45, end=1.0)[0]
    early_u = call_node("ConditioningSetTimestepRange", conditioning=u, start=0.0, end=0.45)[0]
    back_fill = call_node("ConditioningCombine", conditioning_1=late_n, conditioning_2=early_u)[0]
    assert torch.equal(sample(gated, p, n, cfg=5.0), sample(base, p, back_fill, cfg=5.0))


def test_each_stream_is_guided_by_its_own_negatives_by_the_four_equations(family):
    """cfg 1, a video negative and an audio negative: in block 0 the video text call's keys are [ctx⁺, ctx⁻video]
    and the audio's [ctx⁺, ctx⁻audio], and each output is α·Ẑ + (1 − α)·Z⁺ with Z⁻ the same queries over its own
    negative's keys; with both on "all", each call holds both negatives, summed before one normalisation."""
    import tiny_families

    p, video_negative, audio_negative = encode(TEXT), encode(NEGATIVE), encode(OTHER)
    base = tiny_families.model(family)
    split = guidance_cfg(base, term(audio_negative, "audio", terms=term(video_negative, "video")))
    both = guidance_cfg(base, term(audio_negative, terms=term(video_negative)))
    for model, negatives in ((split, 1), (both, 2)):
        seen = first_text_calls(model, p, p)
        assert set(seen) == {"video", "audio"}
        for stream, (q, k, v, out) in seen.items():
            assert k.shape[2] == CONTEXT * (1 + negatives), stream
            z_pos = attention(q, k[:, :, :CONTEXT], v[:, :, :CONTEXT])
            z_negs = [attention(q, k[:, :, s:s + CONTEXT], v[:, :, s:s + CONTEXT])
                      for s in range(CONTEXT, k.shape[2], CONTEXT)]
            expected = nag_reference(z_pos, z_negs, [PHI] * negatives, TAU, ALPHA)
            torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5 * z_pos.abs().max().item())
            assert (expected - z_pos).abs().max() > 1e-2 * z_pos.abs().max()


def test_a_negative_is_projected_in_each_stream_as_its_own_prompt_would_be(family):
    """The negative's keys and values in each stream's text call equal those of the same text given as the prompt:
    it went through the connectors and each stream's projection as ComfyUI passes a prompt."""
    import tiny_families

    p, negative = encode(TEXT), encode(NEGATIVE)
    base = tiny_families.model(family)
    guided = first_text_calls(guidance_cfg(base, term(negative)), p, p)
    alone = first_text_calls(guidance_cfg(base), negative, p)
    for stream in ("video", "audio"):
        (_, k, v, _), (_, k1, v1, _) = guided[stream], alone[stream]
        torch.testing.assert_close(k[:, :, CONTEXT:], k1, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(v[:, :, CONTEXT:], v1, rtol=1e-6, atol=1e-6)


def test_off_outside_its_window_or_in_the_other_stream_it_is_never_computed(family):
    """φ = 0 gives the samples without the term, bit for bit; started at 0.5 of 4 steps, x0 of steps 0–1 are those
    without it, and step 2 differs. A video negative never reaches the audio's text call, nor an audio one the
    video's: there the call's keys are the prompt's alone."""
    import tiny_families

    p, negative = encode(TEXT), encode(NEGATIVE)
    base = tiny_families.model(family)

    def x0s(model):
        found = []
        sample(model, p, p, steps=4, callback=lambda step, x0, x, total: found.append(flat(x0)))
        return found

    plain = x0s(guidance_cfg(base))
    assert all(torch.equal(a, b) for a, b in zip(plain, x0s(guidance_cfg(base, term(negative, scale=0.0))),
                                                  strict=True))
    late = x0s(guidance_cfg(base, term(negative, start=0.5)))
    assert all(torch.equal(a, b) for a, b in zip(plain[:2], late[:2], strict=True))
    assert not torch.equal(plain[2], late[2])
    for stream, other in (("video", "audio"), ("audio", "video")):
        seen = first_text_calls(guidance_cfg(base, term(negative, stream)), p, p)
        assert seen[stream][1].shape[2] == 2 * CONTEXT and seen[other][1].shape[2] == CONTEXT


def test_spatio_temporal_guidance_beside_the_negatives_guides_every_text_call(family):
    """LTXVSpatioTemporalGuidance on block 0 re-runs the positive with that block's self-attentions skipped (they
    make no attention call, so each stream's text call comes first there). A hook below the pack sees every text
    attention over the prompt's keys or a negative's alone, never over both together, in every pass."""
    import tiny_families

    p, negative = encode(TEXT), encode(NEGATIVE)
    base = tiny_families.model(family)
    keys = []
    below = watched(base, lambda stream, q, k, v, out, options: keys.append(k.shape[2]))
    stg = call_node("LTXVSpatioTemporalGuidance", model=below, scale=1.0, blocks="0", start_percent=0.0,
                    end_percent=1.0)[0]
    sample(guidance_cfg(stg, term(negative)), p, p, steps=2)
    text_keys = [k for k in keys if k % CONTEXT == 0]
    assert text_keys and set(text_keys) == {CONTEXT}
    assert len(text_keys) == 2 * 2 * 2 * 2 * 2  # 2 steps × 2 passes (STG's) × 2 blocks × 2 streams × (p, negative)


def test_no_patch_leaks_into_the_source_model(family):
    import copy

    import tiny_families

    p, n, negative = encode(TEXT), encode(NEGATIVE), encode(OTHER)
    base = tiny_families.model(family)
    before = copy.deepcopy(base.model_options)
    first = sample(base, p, n, steps=2, cfg=3.0)
    sample(guidance_cfg(base, term(negative, "video", terms=term(negative, "audio"))), p, n, steps=2)
    assert repr(base.model_options) == repr(before)
    assert torch.equal(sample(base, p, n, steps=2, cfg=3.0), first)


def test_an_audio_negative_in_a_run_without_audio_is_refused_before_sampling(family):
    """LTX-2 sampling an empty audio latent (0 frames): the model skips the audio, so an audio negative would never
    act."""
    import tiny_families

    import comfy.sample

    p, negative = encode(TEXT), encode(NEGATIVE)
    silent = (AUDIO[0], AUDIO[1], 0, AUDIO[3])
    latent = nested(torch.zeros(VIDEO), torch.zeros(silent))
    model = guidance_cfg(tiny_families.model(family), term(negative, "audio"))
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm whose "
                                         r"input 'stream' is 'audio', but this run samples no audio .* Set its "
                                         r"stream to 'video' or 'all'"):
        comfy.sample.sample(model, nested(torch.randn(VIDEO), torch.zeros(silent)), 1, 1.0, "euler", "normal", p, p,
                            latent, seed=42, disable_pbar=True)


def test_an_audio_negative_on_a_model_without_audio_is_refused_before_sampling(family):
    import tiny_families

    p = tiny_families.encode(tiny_families.clip("wan21"), TEXT)
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm whose "
                                         r"input 'stream' is 'audio', but Wan 2.1 / 2.2 has no audio stream .* Set "
                                         r"its stream to 'all'"):
        guidance_cfg(tiny_families.model("wan21"), term(p, "audio"))


def test_keyframe_guides_and_a_text_mask_are_refused_before_sampling(family):
    """LTXVAddGuide's keyframes change the video's tokens: the negatives and the capture are refused before the first
    step. A text mask, which the video's and the audio's contexts would extend by different negatives, is refused
    for the negatives."""
    import tiny_families

    import node_helpers

    p, negative = encode(TEXT), encode(NEGATIVE)
    base = tiny_families.model(family)

    def marked(conditioning, key, value):
        return node_helpers.conditioning_set_values(conditioning, {key: value})

    keyed = marked(p, "keyframe_idxs", torch.zeros(1, 3, 4, 2))
    keyframes = r"LTXV's keyframe guides \(LTXVAddGuide\) change the video's tokens"
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         + keyframes):
        sample(guidance_cfg(base, term(negative)), keyed, keyed, steps=1)
    captured, handle, cp, cn = capture(base, NEGATIVE)
    with pytest.raises(ValueError, match=r"^AttentionCapture: " + keyframes):
        sample(captured, marked(cp, "keyframe_idxs", torch.zeros(1, 3, 4, 2)), cn, steps=1)
    assert not handle.recorder.runs
    masked = marked(p, "attention_mask", torch.ones(1, p[0][0].shape[1]))
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         r"this LTX-2 conditioning carries a text attention mask"):
        sample(guidance_cfg(base, term(negative)), masked, masked, steps=1)


def capture(model, negative_text, clip=None):
    import tiny_families

    return call_node("AttentionCapture", model=model, clip=clip or tiny_families.clip("ltxav"), positive_text=TEXT,
                     negative_text=negative_text, positive_words="", negative_words="", special_tokens=False,
                     max_mb=64.0, over_cap="error")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_captured_samples_are_bit_identical_and_the_maps_are_the_videos_per_frame(family, dtype):
    """KSampler at cfg 3 on the packed video and audio latent: captured and uncaptured samples are bit-identical in
    fp32, bf16 and fp16. The maps are the video's, per frame (F, H, W), of Gemma 3's words; a negative equal to the
    positive gives r = 1."""
    import json

    import tiny_families

    base = tiny_families.model(family, dtype=dtype)
    for negative_text in (NEGATIVE, TEXT):
        captured, handle, p, n = capture(base, negative_text)
        assert torch.equal(sample(captured, p, n, cfg=3.0), sample(base, p, n, cfg=3.0))
        store = handle.recorder.finished
        assert store.steps() == [0, 1, 2] and store.branches() == {"positive", "negative"}
        maps = store.layers(0, "positive")
        assert len(maps) == 2 and all(m.shape[2:] == VIDEO[2:] for m in maps.values())
    samples = sample(captured, p, n, cfg=3.0)
    data = json.loads(call_node("AttentionRt", capture=handle, samples={"samples": nested_of(samples)},
                                score="frobenius", gate_fraction=0.5, related="", filename_prefix="ltxav/rt")[0])
    for word in ("photo", "cat"):
        curve = data["curves"][word]
        assert curve["related"] == word and curve["r"] == pytest.approx([1.0] * 3, rel=1e-3)


def test_a_map_is_the_videos_attention_over_the_words_columns(family):
    """At step 0 the map of "cat" in block 0 is the video queries' softmax attention over the context's keys, mean
    over heads, summed over the columns of its Gemma 3 tokens (after BOS; the registers belong to no word)."""
    import tiny_families

    base = tiny_families.model(family)
    first = {}

    def record(stream, q, k, v, out, options):
        if stream == "video" and k.shape[2] == CONTEXT and "q" not in first:
            first.update(q=q, k=k, order=options["cond_or_uncond"])

    captured, handle, p, n = capture(watched(base, record), NEGATIVE)
    sample(captured, p, n, steps=1, cfg=3.0)
    words = {w.text: w for w in handle.recorder.prompts["positive"].words}
    probs = (first["q"].double() @ first["k"].double().transpose(-1, -2) * first["q"].shape[-1] ** -0.5).softmax(-1)
    cat = probs.mean(dim=1)[..., list(words["cat"].columns)].sum(-1)  # (B·chunks, N)
    maps = next(iter(handle.recorder.finished.layers(0, "positive").values()))
    index = list(words).index("cat")
    rows = first["order"].index(0) * VIDEO[0]  # p's chunk of the batch
    expected = cat[rows:rows + VIDEO[0]]  # the maps are stored in fp16
    torch.testing.assert_close(maps[:, index].flatten(1).double(), expected, rtol=2e-3, atol=1e-6)


def test_the_capture_records_an_attention_negative_at_cfg_1_and_changes_nothing(family):
    """cfg 1, a video negative: captured below the guidance, the samples equal the uncaptured run bit for bit; the
    negative is the "negative" branch at every step, with its effect map over the video's latent."""
    import tiny_families

    base = tiny_families.model(family)
    p, negative = encode(TEXT), encode(NEGATIVE)
    reference = sample(guidance_cfg(base, term(negative, "video")), p, negative)
    below, handle, cp, cn = capture(base, NEGATIVE)
    assert torch.equal(sample(guidance_cfg(below, term(cn, "video")), cp, cn), reference)
    store = handle.recorder.finished
    assert store.steps() == [0, 1, 2] and store.branches() == {"positive", "negative"}
    assert store.effects[(1, "attention")].shape == (VIDEO[0], *VIDEO[2:])
