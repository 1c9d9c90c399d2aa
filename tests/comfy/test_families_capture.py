"""The attention capture on tiny models of every family it reads: SD1, SD2, SDXL, SD3.5, Flux, Flux.2 Klein, Chroma,
Qwen-Image, Wan 2.1 t2v and i2v, LTXV, Kandinsky 5, Krea 2, Lumina 2 and Z-Image; and a clear refusal for the
families it does not read.

Every test runs the family's real model, tokenizer and text-encoder classes (tests/support/tiny_families.py).
"""

import functools

import pytest
import torch
from comfy_helpers import assert_memory_stays_flat, call_node, pack_module

CAPTURED = ["sd1", "sd2", "sdxl", "sd3", "flux", "flux2_klein", "chroma", "qwen_image", "wan21", "wan21_i2v", "ltxv",
            "kandinsky5", "krea2", "lumina2", "z_image", "hunyuan_video15", "flux2_dev"]
NEXTDIT = ("lumina2", "z_image")  # captured where ComfyUI numbers NextDiT's layers (v0.33); refused on v0.3.64
PADDED = ("z_image", "flux2_dev")  # the model pads the context with tokens of its own, which belong to no word
REFUSED = {"lumina2": r"this ComfyUI does not number Lumina 2's and Z-Image's \(NextDiT\) layers",
           "hidream": "its blocks have no dit replace", "hunyuan_video": "its Llama tokenizer",
           "auraflow": "AuraFlow's register tokens",
           "chroma_radiance": "Chroma Radiance samples pixels in 16×16 patches"}
DITS = [f for f in CAPTURED if f not in ("sd1", "sd2", "sdxl")]
TEXT, NEGATIVE = "a photo of a cat", "blurry dog"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def nextdit_captured(request):
    """Lumina 2 and Z-Image are captured where this ComfyUI numbers NextDiT's layers, and refused where it does not."""
    family = getattr(request.node, "callspec", None) and request.node.callspec.params.get("family")
    if family not in NEXTDIT:
        return
    request.getfixturevalue("comfy")
    captured = any(f.__name__.endswith(".nextdit") for f in pack_module("nodes.families").FAMILIES)
    refusal = request.node.originalname == "test_an_unsupported_family_is_refused_before_sampling"
    if captured == refusal:
        pytest.skip(f"{family}: this ComfyUI {'captures' if captured else 'refuses'} NextDiT")


def capture(family, positive=TEXT, negative=NEGATIVE, model=None, **inputs):
    import tiny_families

    settings = dict(positive_words="", negative_words="", special_tokens=True, max_mb=64.0, over_cap="error")
    return call_node("AttentionCapture", model=model or tiny_families.model(family),
                     clip=tiny_families.clip(family), positive_text=positive, negative_text=negative,
                     **settings | inputs)


def sample(family, model, p, n, steps=3, cfg=4.0, seed=42):
    import tiny_families

    import comfy.sample

    latent = tiny_families.latent(family, 2)
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", p, n, latent, seed=seed,
                               disable_pbar=True)


@pytest.mark.parametrize("family", CAPTURED)
def test_maps_sum_to_one_over_the_text_keys_when_every_column_is_captured(family):
    model, handle, p, n = capture(family)
    sample(family, model, p, n)
    store = handle.recorder.finished
    assert store.steps() == [0, 1, 2]
    for (_, layer, branch), maps in store.records.items():
        assert maps.shape == (2, len(handle.words[branch]), *layer.grid)
        if family in PADDED:  # the model's own pad tokens take the rest (the planted-column test is exact there)
            assert ((maps.float().sum(1) > 0.05) & (maps.float().sum(1) < 1.0)).all()
            continue
        torch.testing.assert_close(maps.float().sum(1), torch.ones(2, *layer.grid), rtol=0, atol=4e-3)


@pytest.mark.parametrize("family", CAPTURED)
def test_every_words_columns_hold_its_tokens(family):
    """Independently of the capture's mapping: the token ids at a word's columns of the conditioning's token axis
    (tests/support/tiny_families.context_tokens) spell that word."""
    import tiny_families

    _, handle, p, _ = capture(family, positive="a photo of a cat, photorealistic", special_tokens=False)
    clip = tiny_families.clip(family)
    ids = tiny_families.context_tokens(family, clip.tokenize("a photo of a cat, photorealistic"))
    assert len(ids) == max(p[0][0].shape[1], tiny_families.LEFT_PADDED.get(family, 0))
    prompt = handle.recorder.prompts["positive"]
    assert [w.text for w in prompt.words] == ["a", "photo", "of", "cat", "photorealistic"]
    family_module = pack_module("nodes.families").family_of(tiny_families.model(family))
    spellers = [part.spell for part in family_module.text(clip, "a photo of a cat").parts]
    for word in prompt.words:
        pieces = [ids[c] for c in word.columns]
        assert any(word.text in spell(pieces).lower().replace(" ", "") for spell in spellers), (word, pieces)


@pytest.mark.parametrize("family", CAPTURED)
def test_a_negative_equal_to_the_positive_gives_r_one(family):
    import json

    model, handle, p, n = capture(family, negative=TEXT, negative_words="photo, cat", special_tokens=False)
    samples = sample(family, model, p, n)
    data = json.loads(call_node("AttentionRt", capture=handle, samples={"samples": samples}, score="frobenius",
                                gate_fraction=0.5, related="", filename_prefix=f"families/{family}")[0])
    assert list(data["curves"]) == ["photo", "cat"]
    for word, curve in data["curves"].items():  # r(i) is the word itself: its own map correlates 1 with it
        assert curve["related"] == word and curve["r"] == pytest.approx([1.0] * 3)


@pytest.mark.parametrize("family", CAPTURED)
def test_branches_of_the_eq8_batch_are_separated(family):
    """Step 0 maps of p and n inside the eq. 8 batch [p, n, u] equal each prompt's maps when it is alone."""
    import tiny_families

    import comfy.sample
    import comfy.samplers

    model, handle, p, n = capture(family, special_tokens=False)
    guided = call_node("NegativeGuidanceCFG", model=model, clip=tiny_families.clip(family), mode="independent",
                       neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant")[0]
    sample(family, guided, p, n)
    store = handle.recorder.finished
    for branch, text in (("positive", TEXT), ("negative", NEGATIVE)):
        alone, handle_alone, c, _ = capture(family, positive=text, negative="", special_tokens=False)
        guider = call_node("CFGGuider", model=alone, positive=c, negative=c, cfg=1.0)[0]
        latent = tiny_families.latent(family, 2)
        sigmas = comfy.samplers.calculate_sigmas(alone.get_model_object("model_sampling"), "normal", 3)
        guider.sample(comfy.sample.prepare_noise(latent, 42), latent, comfy.samplers.sampler_object("euler"), sigmas,
                      seed=42)
        reference = handle_alone.recorder.finished.layers(0, "positive")
        ours = store.layers(0, branch)
        assert ours.keys() == reference.keys()
        for layer in ours:
            torch.testing.assert_close(ours[layer].float(), reference[layer].float(), rtol=0, atol=2e-3)


def planting(column: int, text_tokens: int, wrapped):
    """An attention override, applied after the capture and wrapping its override: every text key but ``column`` is
    zeroed and every image query points at that key, so that column takes all of the text attention."""

    @functools.wraps(wrapped)
    def override(func, *args, **kwargs):
        q, k = args[0], args[1]
        heads_split = kwargs.get("skip_reshape", False)
        axis = 2 if heads_split else 1
        queries, keys = q.shape[axis], k.shape[axis]
        if keys == text_tokens and queries != keys:  # cross-attention (Wan): q image, k text
            text, image = slice(0, text_tokens), slice(0, queries)
        elif keys > text_tokens and keys == queries:  # joint attention: [text, image]
            text, image = slice(0, text_tokens), slice(text_tokens, None)
        else:
            return wrapped(func, *args, **kwargs)
        heads = args[3] if len(args) > 3 else kwargs["heads"]
        q4, k4 = (x.clone() if heads_split else x.clone().view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)
                  for x in (q, k))
        key = k4[:, :, column:column + 1].clone()
        k4[:, :, text] = 0.0
        k4[:, :, column:column + 1] = key
        strength = 60.0 * (key.shape[-1] / 32) ** 0.5  # a logit of 60/√32 at any head width
        q4[:, :, image] = strength * key / key.norm(dim=-1, keepdim=True) / key.norm(dim=-1, keepdim=True).clamp_min(1)
        back = (lambda x: x) if heads_split else (lambda x: x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1))
        return wrapped(func, back(q4), back(k4), *args[2:], **kwargs)

    return override


@pytest.mark.parametrize("family", DITS)
def test_the_word_at_a_planted_column_takes_the_map(family):
    """A planted context column that every image query attends to lands in the map of the word at that column."""
    model, handle, p, n = capture(family, special_tokens=False)
    check_planted(family, model, handle, p, n)


def check_planted(family, model, handle, p, n, before=0):
    """Plant "cat"'s first column (``before``: the tokens the model puts before the prompt's) and sample one step."""
    import tiny_families

    cat = next(w for w in handle.recorder.prompts["positive"].words if w.text == "cat")
    options = model.model_options["transformer_options"]
    planted = model.clone()
    text = p[0][0].shape[1]
    text = -(-text // 32) * 32 if family == "z_image" else text  # Z-Image's caption padded to a multiple of 32
    text = max(text, tiny_families.LEFT_PADDED.get(family, 0))  # Flux.2 dev's padded on the left to 512
    override = planting(before + cat.columns[0], before + text, options["optimized_attention_override"])
    planted.model_options["transformer_options"] = {**options, "optimized_attention_override": override}
    sample(family, planted, p, n, steps=1)
    words = handle.words["positive"]
    for layer, maps in handle.recorder.finished.layers(0, "positive").items():
        assert maps[:, words.index("cat")].float().min() > 0.9, (layer, maps[:, words.index("cat")].mean())


@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
def test_hunyuan_video15_a_planted_column_behind_image_and_quoted_text_lands_in_its_words_map(family):
    """The stream is [CLIP-vision, ByT5, Qwen2.5-VL]: the column planted at "cat"'s place in it lands in cat's map."""
    import tiny_families

    model, handle, p, n = capture(family, special_tokens=False)
    p, n = tiny_families.image_and_quotes(p, n)
    check_planted(family, model, handle, p, n, before=tiny_families.VISION_TOKENS + 7)


def attention_negative(model, conditioning):
    """NegativeGuidanceCFG at cfg 1 (its main negative off) with one AttentionNegativeTerm of ``conditioning``."""
    term = call_node("AttentionNegativeTerm", conditioning=conditioning, scale=4.0, tau=2.5, alpha=0.25, start=0.0,
                     end=1.0, window_unit="steps", schedule="constant")[0]
    return call_node("NegativeGuidanceCFG", model=model, mode="standard", neg_scale=0.0, neg_start=0.0, neg_end=1.0,
                     window_unit="steps", neg_schedule="constant", terms=term)[0]


@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
def test_hunyuan_video15_an_attention_negatives_maps_are_those_of_its_text_as_the_prompt(family):
    """Image to video, quoted text. At step 0's first block the image queries do not depend on the negatives, so the
    maps of an attention-space negative (the "negative" branch at cfg 1) equal those of its text given as the prompt,
    with the run's image and its own quoted text: its words are read behind the run's CLIP-vision tokens and its own
    4 ByT5 tokens (the prompt has 7)."""
    import tiny_families

    model = tiny_families.model(family)
    captured, handle, p, n = capture(family, model=model, special_tokens=False)
    p, n = tiny_families.image_and_quotes(p, n)
    sample(family, attention_negative(captured, n), p, n, steps=1, cfg=1.0)
    alone, handle_alone, c, other = capture(family, model=model, positive=NEGATIVE, negative=TEXT,
                                            special_tokens=False)
    c = [[c[0][0], {**p[0][1], "conditioning_byt5small": n[0][1]["conditioning_byt5small"]}]]
    sample(family, alone, c, other, steps=1, cfg=1.0)
    assert handle.words["negative"] == handle_alone.words["positive"]
    ours = handle.recorder.finished.layers(0, "negative")
    reference = handle_alone.recorder.finished.layers(0, "positive")
    first = next(layer for layer in ours if layer.block == ("double_block", 0))
    torch.testing.assert_close(ours[first].float(), reference[first].float(), rtol=0, atol=2e-3)


@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
def test_hunyuan_video15_without_a_glyph_mapper_quoted_text_changes_nothing(family):
    """A HunyuanVideo 1.5 without ByT5's glyph mapper (``byt5_in``) ignores quoted text's ByT5 tokens, and so do the
    capture and the negatives: with an attention negative at cfg 1, the samples and every map are bit for bit those
    of the same run without them."""
    import tiny_families

    class NoGlyphs(tiny_families.FAMILIES[family].config):
        unet_config = tiny_families.FAMILIES[family].config.unet_config | {"byt5": False}

    runs = []
    for quoted in (False, True):
        captured, handle, p, n = capture(family, model=tiny_families.build(NoGlyphs))
        p, n = tiny_families.image_and_quotes(p, n) if quoted else tiny_families.with_start_image(p, n)
        runs.append((sample(family, attention_negative(captured, n), p, n, cfg=1.0), handle.recorder.finished))
    (plain, plain_maps), (quoted, quoted_maps) = runs
    assert torch.equal(plain, quoted) and plain_maps.records.keys() == quoted_maps.records.keys()
    assert all(torch.equal(plain_maps.records[key], quoted_maps.records[key]) for key in plain_maps.records)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
def test_hunyuan_video15_image_and_quoted_text_tokens_belong_to_no_word(family, dtype):
    """Image to video, each prompt quoting text. At cfg 4, and at cfg 1 with the negative as an attention-space
    negative (the "negative" branch), captured samples equal uncaptured ones bit for bit, and every map sums to one
    over its prompt's Qwen2.5-VL tokens (every column captured): the CLIP-vision and ByT5 tokens belong to no word."""
    import tiny_families

    model = tiny_families.model(family, dtype=dtype)
    captured, handle, p, n = capture(family, model=model)
    p, n = tiny_families.image_and_quotes(p, n)
    for patch, cfg in ((lambda m: m, 4.0), (lambda m: attention_negative(m, n), 1.0)):
        assert torch.equal(sample(family, patch(model), p, n, cfg=cfg), sample(family, patch(captured), p, n, cfg=cfg))
        store = handle.recorder.finished
        assert store.steps() == [0, 1, 2] and store.branches() == {"positive", "negative"}
        for (_, layer, branch), maps in store.records.items():
            assert maps.shape == (2, len(handle.words[branch]), *layer.grid)
            torch.testing.assert_close(maps.float().sum(1), torch.ones(2, *layer.grid), rtol=0, atol=4e-3)


EDITS = [("qwen_image", None), ("qwen_image", "index_timestep_zero"), ("krea2", "index"),
         ("krea2", "index_timestep_zero")]


@pytest.mark.parametrize("family, method", EDITS, ids=[f"{f}-{m}" for f, m in EDITS])
def test_edit_reference_latents_are_not_queries_of_the_maps(family, method):
    """Qwen-Image-Edit and Krea 2: the prompts carry a reference latent (ReferenceLatent, with a method), whose
    tokens follow the image's. The maps are the image's grid and sum to 1; the samples equal the uncaptured run's
    bit for bit."""
    import tiny_families

    reference = {"samples": torch.randn(tiny_families.latent_shape(family),
                                        generator=torch.Generator().manual_seed(7))}

    def edit(conditioning):
        conditioning = call_node("ReferenceLatent", conditioning=conditioning, latent=reference)[0]
        if method is None:
            return conditioning
        return call_node("FluxKontextMultiReferenceLatentMethod", conditioning=conditioning,
                         reference_latents_method=method)[0]

    base = tiny_families.model(family)
    model, handle, p, n = capture(family, model=base)
    samples = sample(family, model, edit(p), edit(n))
    assert torch.equal(samples, sample(family, base, edit(p), edit(n)))
    for (_, layer, _), maps in handle.recorder.finished.records.items():
        assert layer.grid == (4, 4)
        torch.testing.assert_close(maps.float().sum(1), torch.ones(2, *layer.grid), rtol=0, atol=4e-3)


@pytest.mark.parametrize("family", ["z_image"])
def test_z_image_omni_reference_latents_are_refused_before_sampling(family):
    """Z-Image Omni's reference latents put their own captions and images before the prompt's: refused before the
    first step."""
    import tiny_families

    model, handle, p, n = capture(family)
    reference = {"samples": torch.zeros(tiny_families.latent_shape(family))}
    edited = call_node("ReferenceLatent", conditioning=p, latent=reference)[0]
    with pytest.raises(ValueError, match=r"^AttentionCapture: NextDiT's reference latents \(Z-Image Omni\) put "):
        sample(family, model, edited, n)
    assert not handle.recorder.runs


def test_ltxv_keyframe_guides_are_refused_before_sampling():
    """LTXVAddGuide's keyframe_idxs change the video's tokens: the capture refuses the run before the first step."""
    import node_helpers

    model, handle, p, n = capture("ltxv")
    guided = node_helpers.conditioning_set_values(p, {"keyframe_idxs": torch.zeros(1, 3, 4, 2)})
    with pytest.raises(ValueError, match=r"^AttentionCapture: LTXV's keyframe guides \(LTXVAddGuide\) change the "
                                         r"video's tokens"):
        sample("ltxv", model, guided, n)
    assert not handle.recorder.runs


@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
def test_hunyuan_video15_a_text_mask_is_refused_before_sampling(family):
    """A text attention mask (its own encoder keeps none) would join the attention: the capture, an attention
    negative beside such a prompt, and such a negative are refused before the first step, naming it."""
    import tiny_families

    import node_helpers

    model, handle, p, n = capture(family)
    mask = torch.ones(1, p[0][0].shape[1])
    mask[:, -2:] = 0
    marked = node_helpers.conditioning_set_values(p, {"attention_mask": mask})
    message = "a HunyuanVideo 1.5 conditioning carries a text attention mask"
    with pytest.raises(ValueError, match=f"^AttentionCapture: {message}"):
        sample(family, model, marked, n)
    assert not handle.recorder.runs

    def with_negative(positive, negative):
        term = call_node("AttentionNegativeTerm", conditioning=negative, scale=4.0, tau=2.5, alpha=0.25, start=0.0,
                         end=1.0, window_unit="steps", schedule="constant")[0]
        patched = call_node("NegativeGuidanceCFG", model=tiny_families.model(family), mode="standard",
                            neg_scale=0.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                            neg_schedule="constant", terms=term)[0]
        return sample(family, patched, positive, positive, cfg=1.0)

    with pytest.raises(ValueError, match=f"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         f"{message}"):
        with_negative(marked, n)
    with pytest.raises(ValueError, match=f"^AttentionNegativeTerm: input 'conditioning': {message}"):
        with_negative(p, marked)


def test_ltxv_padding_takes_no_share_of_the_maps():
    """LTXV masks its T5 padding (−max on the logits): the <pad> column's map is exactly 0 at every layer and step,
    as in the layer's own attention, and the prompt's words and <eos> share all of it. Without the mask the 123
    pads would take most of each map."""
    model, handle, p, n = capture("ltxv")
    sample("ltxv", model, p, n)
    store = handle.recorder.finished
    for branch in ("positive", "negative"):
        words = handle.words[branch]
        assert words[-2:] == ["<eos>", "<pad>"]
        for step in store.steps():
            for layer, maps in store.layers(step, branch).items():
                assert torch.equal(maps[:, -1], torch.zeros_like(maps[:, -1])), (branch, step, layer)
                torch.testing.assert_close(maps[:, :-1].float().sum(1), torch.ones(2, *layer.grid), rtol=0,
                                           atol=4e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("family", ["sd3", "flux", "flux2_klein", "chroma", "qwen_image", "wan21", "ltxv",
                                    "kandinsky5", "krea2", "lumina2", "z_image", "hunyuan_video15", "flux2_dev"])
def test_captured_samples_are_bit_identical_in_every_dtype(family, dtype):
    import tiny_families

    import comfy.sample
    import comfy.samplers

    model = tiny_families.model(family, dtype=dtype)
    captured, _, p, n = capture(family, model=model, special_tokens=False)
    assert torch.equal(sample(family, model, p, n), sample(family, captured, p, n))
    ours = call_node("NegativeGuidanceGuider", model=captured, positive=p, negative=n, cfg=4.0,
                     clip=tiny_families.clip(family), mode="independent", neg_scale=2.0, neg_start=0.3, neg_end=1.0,
                     window_unit="steps", neg_schedule="constant")[0]
    plain = call_node("NegativeGuidanceGuider", model=model, positive=p, negative=n, cfg=4.0,
                      clip=tiny_families.clip(family), mode="independent", neg_scale=2.0, neg_start=0.3, neg_end=1.0,
                      window_unit="steps", neg_schedule="constant")[0]
    latent = tiny_families.latent(family, 2)
    noise = comfy.sample.prepare_noise(latent, 42)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 3)
    outs = [g.sample(noise, latent, comfy.samplers.sampler_object("euler"), sigmas, seed=42) for g in (plain, ours)]
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("family", list(REFUSED))
def test_an_unsupported_family_is_refused_before_sampling(family):
    with pytest.raises(ValueError, match=f"^AttentionCapture: input 'model': its diffusion model .* cannot be "
                                         f"captured: {REFUSED[family]}.*Supported: SD1.x"):
        capture(family)


@pytest.mark.parametrize("family", ["flux", "wan21"])
def test_captures_in_a_row_do_not_grow_memory_and_never_leak_into_the_model(family):
    import tiny_families

    model = tiny_families.model(family)
    before = repr(model.model_options), repr(model.wrappers)

    def once():
        captured, handle, p, n = capture(family, model=model, special_tokens=False)
        sample(family, captured, p, n, steps=2)
        return handle

    assert_memory_stays_flat(once)
    assert (repr(model.model_options), repr(model.wrappers)) == before


def test_video_maps_are_frame_by_frame_and_the_analysis_averages_frames():
    """Wan's maps are [frame, H, W]; r_t scores a whole map (every frame), the heatmaps show the frame mean."""
    import comfy.sample

    model, handle, p, n = capture("wan21", special_tokens=False)
    latent = torch.zeros(2, 16, 3, 8, 8)
    comfy.sample.sample(model, comfy.sample.prepare_noise(latent, 1), 2, 4.0, "euler", "normal", p, n, latent,
                        seed=1, disable_pbar=True)
    store = handle.recorder.finished
    layer, maps = next(iter(store.layers(0, "positive").items()))
    assert layer.grid == (3, 4, 4) and maps.shape == (2, 4, 3, 4, 4)
    report = pack_module("attention.analysis").analyse(store, handle.words, "frobenius", 0.5, {})
    assert report.maps["positive"].shape == (2, 2, 4, 4, 4)  # steps, images, words, H, W
    frame_mean = sum(m.float().mean(2) for m in store.layers(0, "positive").values())
    torch.testing.assert_close(report.maps["positive"][0], frame_mean)
    torch.testing.assert_close(store.scores[(0, layer, "positive")][..., 0],
                               maps.float().flatten(2).square().sum(-1).sqrt(), rtol=2e-3, atol=0)

def regional(kind, conditioning):
    """``conditioning`` as a regional prompt over the 32×32-pixel bottom-right quarter of the 64×64 image: an area,
    a mask cropped to its bounds, or a mask over the whole image (the model then sees the whole latent)."""
    if kind == "area":
        return call_node("ConditioningSetArea", conditioning=conditioning, width=32, height=32, x=32, y=32,
                         strength=1.0)[0]
    mask = torch.zeros(1, 64, 64)
    mask[:, 32:, 32:] = 1.0
    return call_node("ConditioningSetMask", conditioning=conditioning, mask=mask, strength=1.0,
                     set_cond_area="mask bounds" if kind == "mask bounds" else "default")[0]


@pytest.mark.parametrize("family", ["sd1", "flux", "qwen_image"])
def test_regional_prompts_beside_a_captured_prompt_are_exact_and_a_captured_crop_is_refused(family):
    """An area prompt of other words combined with the captured positive: the samples equal the uncaptured run bit for
    bit, and the step-0 maps are those of the run without it (the area's crop is a forward of its own, never
    recorded; on DiTs its grid made a reshape error). A mask over the whole image keeps the latent whole: the
    captured prompt is recorded as without the mask. The captured prompt itself in an area, or in a mask cropped to
    its bounds, is refused before sampling (its maps would cover a crop)."""
    import tiny_families

    model, handle, p, n = capture(family)
    plain_model, plain, p0, n0 = capture(family)
    sample(family, plain_model, p0, n0)
    other = regional("area", tiny_families.encode(tiny_families.clip(family), "a red hat"))
    for combined in (call_node("ConditioningCombine", conditioning_1=p, conditioning_2=other)[0],
                     regional("mask", p)):
        reference = sample(family, tiny_families.model(family), combined, n)
        assert torch.equal(sample(family, model, combined, n), reference)
        first = [key for key in plain.recorder.finished.records if key[0] == 0]
        assert first and all(torch.equal(handle.recorder.finished.records[key], plain.recorder.finished.records[key])
                             for key in first)
    for kind in ("area", "mask bounds"):
        with pytest.raises(ValueError, match=r"^AttentionCapture: the sampler's positive prompt is set to an area"):
            sample(family, model, regional(kind, p), n)


@pytest.mark.parametrize("family", ["sd1", "sd3", "flux"])
def test_a_word_typed_with_digits_is_one_word_with_every_encoders_columns(family):
    """'3d' and '4k': CLIP splits them into '3', 'd' and '4', 'k' (SD3's word list held '3', 'd' and T5's '3d',
    measured over different tokens); each is one word, and on SD3 it holds CLIP's two columns and T5's two."""
    handle = capture(family, positive="a 3d render of a cat, 4k", negative="3d, blurry", negative_words="3d")[1]
    words = {w.text: w.columns for w in handle.recorder.prompts["positive"].words}
    assert {"3d", "4k"} <= words.keys() and not {"3", "d", "4", "k"} & words.keys()
    assert len(words["3d"]) == (4 if family == "sd3" else 2)
    assert handle.words["negative"][0] == "3d"  # then the special tokens this capture adds


@pytest.mark.parametrize("name, reason", [
    ("wan21_vace", "VaceWanModel \\(WAN21_Vace\\) cannot be captured: it is a Wan variant whose blocks make attention "
                   "calls of their own")])
def test_a_2026_model_the_pack_does_not_read_yet_is_refused_with_its_own_reason(comfy, name, reason):
    """A Wan variant (its blocks make attention calls the site would take for the text call), by the capture and by
    attention-space negatives."""
    import tiny_families

    if name not in tiny_families.REFUSED_MODELS:
        pytest.skip(f"this ComfyUI has no {name}")
    model = tiny_families.build(tiny_families.REFUSED_MODELS[name])
    with pytest.raises(ValueError, match=f"^AttentionCapture: input 'model': its diffusion model {reason}"):
        call_node("AttentionCapture", model=model, clip=tiny_families.clip("sd1"), positive_text=TEXT,
                  negative_text=NEGATIVE, positive_words="", negative_words="", special_tokens=False, max_mb=64.0,
                  over_cap="error")
    term = call_node("AttentionNegativeTerm", conditioning=tiny_families.encode(tiny_families.clip("sd1"), NEGATIVE),
                     scale=4.0, tau=2.5, alpha=0.25, start=0.0, end=1.0, window_unit="steps", schedule="constant")[0]
    with pytest.raises(ValueError, match=f"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         f"its diffusion model {reason}"):
        call_node("NegativeGuidanceCFG", model=model, mode="standard", neg_scale=0.0, neg_start=0.0, neg_end=1.0,
                  window_unit="steps", neg_schedule="constant", terms=term)
