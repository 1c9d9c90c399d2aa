"""Attention-space negatives (AttentionNegativeTerm, NAG) on tiny models of SD1, SDXL, Wan 2.1 (t2v, i2v), Flux dev
(also with Flux.2's 4-axis rope and numbered text tokens), Chroma, SD3.5 and Qwen-Image, through the real ComfyUI
sampler (tests/support/tiny_families.py).

Oracles are written here from the four equations of Chen et al. 2025 (https://arxiv.org/abs/2505.21179) and from
plain softmax attention, never from the pack's code: a hook above the pack's hooks sees the layer's q/k/v and the
pack's output; a hook below it sees each attention call the pack makes.
"""

import logging

import pytest
import torch
from comfy_helpers import Recorder, call_node, pack_module
from nag_oracle import attention, heads_first, nag_reference

CROSS = ["sd1", "sdxl", "wan21", "wan21_i2v", "ltxv", "kandinsky5"]
JOINT = ["flux", "flux_rope4", "flux2_klein", "chroma", "sd3", "qwen_image", "krea2", "hunyuan_video15"]
FAMILIES = CROSS + JOINT
UNETS = ("sd1", "sdxl")
TEXT, NEGATIVE, OTHER = "a photo of a cat", "blurry dog", "red chair"
PHI, TAU, ALPHA = 4.0, 2.5, 0.25
OVERRIDE = "optimized_attention_override"
MASK = "test: the call's attention mask"  # where ``hook`` hands a record the call's mask, in a copy of its options


pytestmark = pytest.mark.usefixtures("one_thread")


def encode(family, text):
    import tiny_families

    return tiny_families.encode(tiny_families.clip(family), text)


def attention_term(conditioning, scale=PHI, tau=TAU, alpha=ALPHA, start=0.0, end=1.0, window_unit="steps",
                   schedule="constant", terms=None):
    return call_node("AttentionNegativeTerm", conditioning=conditioning, scale=scale, tau=tau, alpha=alpha,
                     start=start, end=end, window_unit=window_unit, schedule=schedule, terms=terms)[0]


def guidance_cfg(model, terms=None, mode="standard", neg_scale=0.0, clip=None, empty=None):
    """NegativeGuidanceCFG; in standard mode at cfg 1 its main negative is off."""
    return call_node("NegativeGuidanceCFG", model=model, mode=mode, neg_scale=neg_scale, neg_start=0.0, neg_end=1.0,
                     window_unit="steps", neg_schedule="constant", terms=terms, clip=clip, empty=empty)[0]


def sample(family, model, p, n, steps=3, cfg=1.0, seed=42, callback=None):
    import tiny_families

    import comfy.sample

    latent = tiny_families.latent(family, 2)
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", p, n, latent, seed=seed,
                               disable_pbar=True, callback=callback)


def x0_per_step(family, model, p, n, steps, cfg=1.0):
    found = []
    sample(family, model, p, n, steps, cfg, callback=lambda step, x0, x, total: found.append(x0.clone()))
    return found


def first_cross_block(model):
    """The attn2 replace key of a UNet's first cross-attention block, and its first attn2 module."""
    diffusion_model = model.get_model_object("diffusion_model")
    block = pack_module("nodes.families.unet").layers(diffusion_model, (1, 1))[0].block
    blocks = {"input": diffusion_model.input_blocks, "output": diffusion_model.output_blocks}
    module = next(m for m in blocks[block[0]][block[1]].modules() if hasattr(m, "attn2"))
    return block, module.attn2


def hook(model, family, record, above):
    """A clone of ``model`` with a hook that sees each text-attention call and its output: ``above`` wraps the
    pack's hooks (it sees the layer's own call), below them it sees the calls the pack makes. ``record(q, k, v,
    options, out, heads, heads_split)``: q/k/v heads-first for joint DiTs that hand them so; a DiT call's mask (LTXV's
    text mask) is ``options[MASK]``."""
    import comfy.ldm.modules.attention as comfy_attention

    hooked = model.clone()
    if family in UNETS:
        key, _ = first_cross_block(model)
        replaces = hooked.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
        inner = replaces.get(key)

        def attn2(q, k, v, extra):
            out = inner(q, k, v, extra) if inner is not None else comfy_attention.optimized_attention(
                q, k, v, extra["n_heads"], attn_precision=extra["attn_precision"], transformer_options=extra)
            record(q, k, v, extra, out, extra["n_heads"], False)
            return out

        attn2.__wrapped__ = inner  # it wraps the hook below and says so, as the pack's checks ask
        hooked.set_model_attn2_replace(attn2, *key)
        return hooked
    options = hooked.model_options.setdefault("transformer_options", {})
    inner = options.get(OVERRIDE)

    def override(func, *args, **kwargs):
        out = inner(func, *args, **kwargs) if inner is not None else func(*args, **kwargs)
        heads = args[3] if len(args) > 3 else kwargs["heads"]
        mask = kwargs.get("mask", args[4] if len(args) > 4 else None)
        record(args[0], args[1], args[2], {**(kwargs.get("transformer_options") or {}), MASK: mask}, out, heads,
               kwargs.get("skip_reshape", False))
        return out

    override.__wrapped__ = inner
    hooked.model_options["transformer_options"] = {**options, OVERRIDE: override}
    return hooked


def joint_order(family, x, t_pos, t_neg, axis):
    """A layer's call in the order the oracles read, [txt⁺, txt⁻, img]: Krea 2's stream is [txt⁺, img, txt⁻]."""
    if family != "krea2" or not t_neg:
        return x
    image = x.shape[axis] - t_pos - t_neg
    return torch.cat([x.narrow(axis, 0, t_pos), x.narrow(axis, t_pos + image, t_neg), x.narrow(axis, t_pos, image)],
                     dim=axis)


def computed_steps(family, terms, p, n, steps):
    """The steps at which the attention-space negatives ``terms`` are computed: those at which a hook below the pack's
    hooks sees more attention calls than it sees without them (at least one more per text-attention layer: the
    negative's own attention, or in the merged joint form its text stream)."""
    import tiny_families

    import comfy.samplers

    base = tiny_families.model(family)
    sigmas = comfy.samplers.calculate_sigmas(base.get_model_object("model_sampling"), "normal", steps).tolist()
    step_index = pack_module("guidance").step_index

    def calls_per_step(terms):
        seen = []
        below = hook(base, family, lambda q, k, v, options, out, heads, split: seen.append(
            step_index(sigmas, float(options["sigmas"][0]))), above=False)
        sample(family, guidance_cfg(below, terms), p, n, steps=steps)
        return [seen.count(step) for step in range(steps)]

    plain = calls_per_step(None)
    return [step for step, count in enumerate(calls_per_step(terms)) if count > plain[step]]


def tokens(family, conditioning, run=None):
    """The tokens a conditioning's text adds to a text-attention call as an attention-space negative (``run``: the
    prompt's conditioning): LTXV's are cut to the tokens its attention mask keeps; HunyuanVideo 1.5's follow the
    run's CLIP-vision tokens and its own ByT5 tokens."""
    if family == "ltxv":
        return int(conditioning[0][1]["attention_mask"].sum())
    return text_tokens(family, conditioning, run)


def text_tokens(family, conditioning, run=None):
    """The tokens a conditioning puts into a DiT's text stream (HunyuanVideo 1.5: CLIP-vision and ByT5 tokens, then
    its own)."""
    import tiny_families

    if family == "hunyuan_video15":
        return tiny_families.stream_tokens(conditioning, run)
    return conditioning[0][0].shape[1]


def image_and_quotes(conditioning):
    """HunyuanVideo 1.5 image to video, the prompt quoting text: 5 CLIP-vision and 7 ByT5 tokens before its own."""
    import tiny_families

    return tiny_families.image_and_quotes(conditioning, conditioning)[0]


def text_calls(family, text_tokens, image_tokens):
    """Whether a hooked call is the layer's text attention, by its sequence lengths (cross attention: the keys are
    the text and the queries are not; Kandinsky 5's text blocks attend over the text alone)."""
    if family in CROSS:
        axis = lambda x: x.shape[-2 if x.ndim == 4 else 1]  # noqa: E731
        return lambda q, k: axis(k) == text_tokens and axis(q) != text_tokens
    return lambda q, k: q.shape[-2 if q.ndim == 4 else 1] == text_tokens + image_tokens


def image_tokens(family, variant=None):
    """DiTs: 8×8 latents in 2×2 patches, or the 4×4 crop of ``in_area``, or with ``with_reference``'s latent after
    them (cross attention is told apart by its keys alone)."""
    return {"area": 4, "edit": 32, "edit-zero": 32}.get(variant, 16)


def with_reference(conditioning, method=None):
    """An edit: ``conditioning`` with a reference latent (ReferenceLatent; a seeded latent of Qwen-Image's shape, which
    Krea 2's is too), whose tokens follow the image's in the stream; ``method``: FluxKontextMultiReferenceLatentMethod's
    (index_timestep_zero: Qwen-Image-Edit 2511's, the reference modulated at timestep 0; Krea 2 reads a reference
    only with a method)."""
    import tiny_families

    reference = torch.randn(tiny_families.latent_shape("qwen_image"), generator=torch.Generator().manual_seed(7))
    conditioning = call_node("ReferenceLatent", conditioning=conditioning, latent={"samples": reference})[0]
    if method is not None:
        conditioning = call_node("FluxKontextMultiReferenceLatentMethod", conditioning=conditioning,
                                 reference_latents_method=method)[0]
    return conditioning


def in_area(conditioning):
    """A regional prompt: ``conditioning`` set to the 32×32-pixel bottom-right quarter of the 64×64 image."""
    return call_node("ConditioningSetArea", conditioning=conditioning, width=32, height=32, x=32, y=32,
                     strength=1.0)[0]


EDITS = [("qwen_image", None), ("qwen_image", "index_timestep_zero"), ("krea2", "index")]


@pytest.mark.parametrize("family, method", EDITS, ids=[f"{f}-{m}" for f, m in EDITS])
@pytest.mark.parametrize("cfg", [1.0, 2.0])
def test_edit_reference_latents_are_image_tokens_of_every_text(cfg, family, method):
    """Qwen-Image-Edit and Krea 2: a reference latent's tokens follow the image's in the stream, and every text
    attends over them, the negatives' as the prompt's: the one-layer oracle with 32 image tokens (16 of the image, 16
    of the reference), at cfg 1 (merged form) and 2, with the reference modulated as the image or (Qwen-Image-Edit
    2511) at timestep 0."""
    import tiny_families

    check_one_layer(family, cfg, tiny_families.model(family), lambda c: with_reference(c, method), 32)


def test_ltxv_refuses_negatives_beside_keyframe_guides():
    """LTXVAddGuide's keyframes change the video's tokens and, below strength 1, split its self-attention into calls
    of their own, so the text call is no longer the block's second: refused before the first step."""
    import tiny_families

    import node_helpers

    p = node_helpers.conditioning_set_values(encode("ltxv", TEXT), {"keyframe_idxs": torch.zeros(1, 3, 4, 2)})
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         r"LTXV's keyframe guides \(LTXVAddGuide\) change the video's tokens"):
        sample("ltxv", guidance_cfg(tiny_families.model("ltxv"), attention_term(encode("ltxv", NEGATIVE))), p, p,
               steps=1)


@pytest.mark.parametrize("family", ["kandinsky5"])  # skipped where this ComfyUI has no Kandinsky 5
def test_kandinsky5_image_latents_are_one_frame(family):
    """Kandinsky 5 Image samples a 4-D latent: the capture's maps and the negatives' effect map are (H, W), as every
    image family's (a 3-D token grid made the effect map crash)."""
    import tiny_families

    import comfy.sample

    base = tiny_families.model("kandinsky5")
    captured, handle, p, n = capture("kandinsky5", guidance_cfg(base, attention_term(encode("kandinsky5", NEGATIVE))),
                                     NEGATIVE)
    latent = torch.zeros(2, 16, 8, 8)
    comfy.sample.sample(captured, comfy.sample.prepare_noise(latent, 1), 2, 1.0, "euler", "normal", p, n, latent,
                        seed=1, disable_pbar=True)
    store = handle.recorder.finished
    assert {layer.grid for (_, layer, _) in store.records} == {(4, 4)}
    assert store.effects[(0, "attention")].shape == (2, 8, 8)


@pytest.mark.parametrize("family", ["krea2"])  # skipped where this ComfyUI has no Krea 2
def test_krea2_refuses_negatives_beside_a_reference_modulated_at_timestep_0(family):
    """Krea 2 modulates an index_timestep_zero reference at timestep 0 from its first token to the stream's end,
    where the negatives ride: refused before the first step, naming the method and the fix."""
    import tiny_families

    p, neg = with_reference(encode("krea2", TEXT), "index_timestep_zero"), encode("krea2", NEGATIVE)
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         r"Krea 2 modulates a reference latent of method index_timestep_zero .* Use "
                                         r"the 'index' method"):
        sample("krea2", guidance_cfg(tiny_families.model("krea2"), attention_term(neg)), p, p, steps=1)


@pytest.mark.parametrize("family, cfg", [(f, 2.0) for f in FAMILIES] + [(f, 1.0) for f in JOINT])
def test_one_layer_matches_the_four_equations_on_the_positive_rows_only(family, cfg):
    """cfg 2, standard mode: the batch holds p (guided) and n (the eq. 9 negative, never guided). On the first text
    attention of step 0 the pack's output equals the reference: plain attention over [ctx⁺] / [txt⁺, img] for every
    row, and on p's rows Z = α·Ẑ + (1 − α)·Z⁺ with Z⁻ the same queries over the negative's keys. At cfg 1 every row
    of a joint layer is p's, and the pack takes the merged form (guidance/merged_attention.py): the same reference."""
    import tiny_families

    check_one_layer(family, cfg, tiny_families.model(family))


def check_one_layer(family, cfg, base, condition=lambda c: c, image=None, neg=None):
    """The first text attention of each forward of step 0, seen from above the pack's hooks, against the reference.
    ``condition``: applied to the sampler's prompts; ``image``: the image tokens of a call; ``neg``: the negative."""
    p, n = condition(encode(family, TEXT)), condition(encode(family, OTHER))
    neg = encode(family, NEGATIVE) if neg is None else neg
    image = image_tokens(family) if image is None else image
    t_pos, t_neg = text_tokens(family, p), tokens(family, neg, run=p)
    seen = {}
    nag_key = pack_module("nodes.contract").NAG

    def record(q, k, v, options, out, heads, split):  # the first text attention of each forward of step 0
        slots = tuple(options["cond_or_uncond"])
        if 0 in slots:  # p is in this forward: the layer sees the negative's tokens
            text, extra = t_pos, t_neg
        else:  # n alone (Chroma, Qwen-Image: contexts of other lengths are batched apart): no negative at all
            text, extra = text_tokens(family, n), 0
        if slots not in seen and nag_key in options and text_calls(family, text + extra, image)(q, k):
            seen[slots] = (q, k, v, out, heads, split, text, extra, options.get(MASK))

    model = hook(guidance_cfg(base, attention_term(neg)), family, record, above=True)
    sample(family, model, p, n, steps=1, cfg=cfg)
    assert sorted(s for slots in seen for s in slots) == ([0, 1] if cfg > 1 else [0])  # p and n: one forward, or two
    for slots, layer in seen.items():
        check_layer(family, slots, *layer)


def check_layer(family, slots, q, k, v, out, heads, split, t_pos, t_neg, mask):
    """``mask``: the layer's additive text mask over [ctx⁺, ctx⁻] (LTXV), or None."""
    q, k, v = (joint_order(family, heads_first(x, heads, split), t_pos, t_neg, 2) for x in (q, k, v))
    out = joint_order(family, out, t_pos, t_neg, 1)
    guided = torch.tensor(slots).repeat_interleave(q.shape[0] // len(slots)) == 0  # p's rows
    if not guided.any():  # a forward of n alone is exactly ComfyUI's attention (fp32 against fp64: 1e-6 of its scale)
        plain = attention(q, k, v, mask)
        torch.testing.assert_close(out.double(), plain, rtol=1e-5, atol=1e-6 * plain.abs().max().item())
        return
    if family in CROSS:
        if mask is not None:  # the negative is cut to its unmasked tokens: it adds 0s to the mask
            assert torch.equal(mask[..., t_pos:], torch.zeros_like(mask[..., t_pos:]))
        z_pos = attention(q, k[:, :, :t_pos], v[:, :, :t_pos], None if mask is None else mask[..., :t_pos])
        z_neg = attention(q, k[:, :, t_pos:], v[:, :, t_pos:])
        expected = torch.where(guided[:, None, None], nag_reference(z_pos, [z_neg], [PHI], TAU, ALPHA), z_pos)
        unguided = z_pos
    else:
        image = slice(t_pos + t_neg, None)
        pos = [torch.cat([x[:, :, :t_pos], x[:, :, image]], dim=2) for x in (q, k, v)]
        negs = [torch.cat([x[:, :, t_pos:t_pos + t_neg], x[:, :, image]], dim=2) for x in (q, k, v)]
        z_pos, z_neg = attention(*pos), attention(*negs)
        z_image = torch.where(guided[:, None, None], nag_reference(z_pos[:, t_pos:], [z_neg[:, t_neg:]], [PHI],
                                                                   TAU, ALPHA), z_pos[:, t_pos:])
        z_text = torch.where(guided[:, None, None], z_neg[:, :t_neg], torch.zeros_like(z_neg[:, :t_neg]))
        expected = torch.cat([z_pos[:, :t_pos], z_text, z_image], dim=1)
        unguided = torch.cat([z_pos[:, :t_pos], torch.zeros_like(z_text), z_pos[:, t_pos:]], dim=1)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5 * unguided.abs().max().item())
    if guided.any():  # NAG acted on p's rows
        assert (expected[guided] - unguided[guided]).abs().max() > 1e-2 * unguided.abs().max()
    assert torch.equal(expected[~guided], unguided[~guided])  # and on n's rows not at all


@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
@pytest.mark.parametrize("cfg", [1.0, 2.0])
def test_hunyuan_video15_image_and_quoted_text_lead_every_texts_stream(cfg, family):
    """Image to video, the prompts quoting text: a prompt's stream is [CLIP-vision, its ByT5, its Qwen2.5-VL], a
    negative quoting text of its own [the run's CLIP-vision, its ByT5, its Qwen2.5-VL]. The one-layer oracle holds on
    that layout, at cfg 1 (merged form) and 2."""
    import tiny_families

    neg = tiny_families.with_quoted_text(encode(family, NEGATIVE), 4, seed=9)
    check_one_layer(family, cfg, tiny_families.model(family), image_and_quotes, neg=neg)


@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
def test_hunyuan_video15_a_negative_with_an_image_other_than_the_prompts_is_refused_before_sampling(family):
    """A negative's stream takes the run's image: a negative carrying the prompt's image (HunyuanVideo15ImageToVideo's
    negative output) acts; one carrying another image, or an image beside a text-to-video prompt, is refused before
    the first step, naming the input and the fix."""
    import tiny_families

    p, neg = tiny_families.with_start_image(encode(family, TEXT), encode(family, NEGATIVE))
    base = tiny_families.model(family)
    assert not torch.equal(sample(family, guidance_cfg(base, attention_term(neg)), p, p, steps=1),
                           sample(family, guidance_cfg(base), p, p, steps=1))
    other = tiny_families.with_start_image(neg, neg, seed=6)[0]
    for prompt in (p, encode(family, TEXT)):
        with pytest.raises(ValueError, match=r"^AttentionNegativeTerm: input 'conditioning': it carries a CLIP-vision "
                                             r"output \(an image\) that the run's prompt does not.*Feed the "
                                             r"AttentionNegativeTerm the text's own conditioning \(CLIPTextEncode\)"):
            sample(family, guidance_cfg(base, attention_term(other)), prompt, prompt, steps=1)


AREAS = ["sd1", "flux", "qwen_image"]


VARIANTS = [(f, None) for f in FAMILIES] + [(f, "area") for f in AREAS] + [("flux2_klein", "short"),
                                                                         ("qwen_image", "edit"),
                                                                         ("qwen_image", "edit-zero"),
                                                                         ("hunyuan_video15", "image-quotes")]


@pytest.mark.parametrize("family, variant", VARIANTS, ids=[f + (f"-{v}" if v else "") for f, v in VARIANTS])
def test_the_negative_is_projected_as_its_own_prompt_would_be(family, variant):
    """cfg 1: at the first text attention the negative's keys and values are exactly those the layer computes when the
    negative is the prompt (same pooled vector and guidance for DiTs, whose text stream is modulated by them). With a
    regional prompt ("area") the layer runs on the area's crop, and the negative's text positions are those a
    prompt gets there (Qwen-Image numbers its text after the image's own grid: it took the whole latent's). Flux.2
    pads a context shorter than 512 tokens on the left ("short": 100 tokens, as Flux.2 dev's Mistral contexts are):
    the negative is padded alike. Qwen-Image-Edit's reference latents ("edit"; "edit-zero": modulated at timestep 0,
    as the 2511 model does) follow the image in the stream, for the negative as for the prompt. HunyuanVideo 1.5
    image to video, the prompt and the negative quoting text ("image-quotes"): the negative's stream is the run's
    CLIP-vision tokens, its own ByT5 tokens, its own Qwen2.5-VL tokens, as a prompt's would be."""
    import tiny_families

    p, neg = encode(family, TEXT), encode(family, NEGATIVE)
    if variant == "short":
        p, neg = ([[c[0][0][:, :100], c[0][1]]] for c in (p, neg))
    if variant == "image-quotes":
        p, neg = image_and_quotes(p), tiny_families.with_quoted_text(neg, 4, seed=9)
    t_pos, t_neg, t_alone = ((512, 512, 512) if variant == "short" else (
        text_tokens(family, p), tokens(family, neg, run=p), text_tokens(family, neg, run=p)))
    as_prompt = [[neg[0][0], {**p[0][1]}]]  # the negative's context with the positive's pooled output (and image)
    if variant == "image-quotes":  # and its own quoted text
        as_prompt[0][1]["conditioning_byt5small"] = neg[0][1]["conditioning_byt5small"]
    if variant == "area":
        p, as_prompt = in_area(p), in_area(as_prompt)
    if variant in ("edit", "edit-zero"):
        method = "index_timestep_zero" if variant == "edit-zero" else None
        p, as_prompt = with_reference(p, method), with_reference(as_prompt, method)
    runs = {}
    nag_key = pack_module("nodes.contract").NAG

    def recorder(name, text_tokens):
        is_text = text_calls(family, text_tokens, image_tokens(family, variant))

        def record(q, k, v, options, out, heads, split):
            if name not in runs and is_text(q, k) and (name == "alone" or nag_key in options):
                runs[name] = [heads_first(x, heads, split) for x in (q, k, v)]

        return record

    base = tiny_families.model(family)
    sample(family, hook(guidance_cfg(base, attention_term(neg)), family, recorder("nag", t_pos + t_neg), True),
           p, p, steps=1)
    sample(family, hook(guidance_cfg(base), family, recorder("alone", t_alone), True), as_prompt, p, steps=1)
    (q, k, v), (q1, k1, v1) = (joint_order(family, x, t_pos, t_neg, 2) for x in runs["nag"]), runs["alone"]
    if family in CROSS:  # LTXV's negative is its unmasked tokens, the first t_neg of its context
        torch.testing.assert_close(k[:, :, t_pos:], k1[:, :, :t_neg], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(v[:, :, t_pos:], v1[:, :, :t_neg], rtol=1e-6, atol=1e-6)
    else:
        for x, x1 in ((q, q1), (k, k1), (v, v1)):
            torch.testing.assert_close(x[:, :, t_pos:t_pos + t_neg], x1[:, :, :t_neg], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(x[:, :, t_pos + t_neg:], x1[:, :, t_neg:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["hunyuan_video15"])  # skipped where this ComfyUI has no HunyuanVideo 1.5
def test_a_negative_refined_in_a_forward_shared_with_the_cfg_negative_is_its_own_prompts_text(family):
    """cfg 2 with ConditioningZeroOut(p) as the CFG negative, of p's length: p and it share each forward (two chunks).
    The negative's keys and values on p's rows equal those of its text given as the prompt in the same layout: its
    token refiner ran at the forward's batch, with the forward's timesteps."""
    import tiny_families

    p, neg = encode(family, TEXT), encode(family, NEGATIVE)
    t_pos, t_neg = p[0][0].shape[1], neg[0][0].shape[1]
    runs = {}

    def recorder(name, text_tokens):
        is_text = text_calls(family, text_tokens, image_tokens(family))

        def record(q, k, v, options, out, heads, split):
            if name not in runs and is_text(q, k):
                rows = q.shape[0] // len(options["cond_or_uncond"])
                chunk = options["cond_or_uncond"].index(0) * rows  # the prompt's rows
                runs[name] = [heads_first(x, heads, split)[chunk:chunk + rows] for x in (k, v)]

        return record

    def zero(conditioning):
        return call_node("ConditioningZeroOut", conditioning=conditioning)[0]

    base = tiny_families.model(family)
    sample(family, hook(guidance_cfg(base, attention_term(neg)), family, recorder("nag", t_pos + t_neg), True),
           p, zero(p), steps=1, cfg=2.0)
    sample(family, hook(guidance_cfg(base), family, recorder("alone", t_neg), True), neg, zero(neg), steps=1,
           cfg=2.0)
    (k, v), (k1, v1) = runs["nag"], runs["alone"]
    torch.testing.assert_close(k[:, :, t_pos:t_pos + t_neg], k1[:, :, :t_neg], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(v[:, :, t_pos:t_pos + t_neg], v1[:, :, :t_neg], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_off_or_outside_its_window_it_is_bit_identical_and_never_computed(family):
    """φ = 0: the samples equal those without the term, bit for bit. Window start 0.5 of 4 steps: x0 of steps 0–1
    equal the run without it bit for bit, step 2 differs, and a hook below sees the negative's attention only at
    steps 2 and 3."""
    import tiny_families

    p, n, neg = encode(family, TEXT), encode(family, NEGATIVE), encode(family, OTHER)
    base = tiny_families.model(family)
    plain = x0_per_step(family, guidance_cfg(base), p, n, steps=4)
    off = x0_per_step(family, guidance_cfg(base, attention_term(neg, scale=0.0)), p, n, steps=4)
    assert all(torch.equal(a, b) for a, b in zip(plain, off, strict=True))
    late = x0_per_step(family, guidance_cfg(base, attention_term(neg, start=0.5)), p, n, steps=4)
    assert all(torch.equal(a, b) for a, b in zip(plain[:2], late[:2], strict=True))
    assert not torch.equal(plain[2], late[2])
    assert computed_steps(family, attention_term(neg, start=0.5), p, n, steps=4) == [2, 3]


@pytest.mark.parametrize("family", ["sd1", "flux"])
@pytest.mark.parametrize("unit", ["steps", "percent"])
def test_its_window_switches_at_the_steps_a_negative_terms_would(family, unit):
    """The same window as an eq. 8 NegativeTerm (evaluated as one more conditioning) and as an attention-space
    negative (a hook below counts its attention calls): on at the same steps, 6 steps, start 0.45, end 0.8."""
    import tiny_families

    import comfy.samplers

    p, n, neg = encode(family, TEXT), encode(family, NEGATIVE), encode(family, OTHER)
    base = tiny_families.model(family)
    window = dict(start=0.45, end=0.8, window_unit=unit, schedule="linear")
    eq8 = call_node("NegativeTerm", conditioning=neg, weight=1.0, terms=None, **window)[0]
    counted = Recorder()
    model = guidance_cfg(base, eq8, clip=tiny_families.clip(family)).clone()
    model.set_model_unet_function_wrapper(counted)
    sample(family, model, p, n, steps=6)
    sigmas = comfy.samplers.calculate_sigmas(base.get_model_object("model_sampling"), "normal", 6).tolist()
    step_of = {s: pack_module("guidance").step_index(sigmas, s) for s in sigmas}
    eq8_steps = [step_of[s] for s, conds, _ in counted.calls if conds == 3]  # p, the term and u
    assert computed_steps(family, attention_term(neg, **window), p, n, 6) == eq8_steps
    assert 0 < len(eq8_steps) < 6


@pytest.mark.parametrize("family", ["sd1", "flux"])
def test_two_terms_of_half_scale_equal_one_when_they_share_a_context(family):
    import tiny_families

    p, n, neg = encode(family, TEXT), encode(family, NEGATIVE), encode(family, OTHER)
    base = tiny_families.model(family)
    one = sample(family, guidance_cfg(base, attention_term(neg, scale=PHI)), p, n, steps=1)
    two = sample(family, guidance_cfg(base, attention_term(neg, scale=PHI / 2, terms=attention_term(
        neg, scale=PHI / 2))), p, n, steps=1)
    plain = sample(family, guidance_cfg(base), p, n, steps=1)
    torch.testing.assert_close(two, one, rtol=1e-6, atol=1e-6 * one.abs().max().item())
    assert (one - plain).abs().max() > 1e-2 * one.abs().max()


@pytest.mark.parametrize("family", ["sd1", "flux", "wan21"])
def test_one_model_evaluation_per_step_at_cfg_1_and_as_planned_with_eq8_terms(family, caplog):
    """Stock KSampler at cfg 1, standard mode and an attention-space negative: 1 model call of 1 conditioning per
    step, said by the log and the node's readout. Independent mode with an eq. 8 NegativeTerm gated at 0.5: the
    calls are exactly those of the same run without the attention term."""
    import tiny_families

    import nodes

    p, n, neg = encode(family, TEXT), encode(family, NEGATIVE), encode(family, OTHER)
    base = tiny_families.model(family)
    output = nodes.NODE_CLASS_MAPPINGS["NegativeGuidanceCFG"].execute(
        model=base, mode="standard", neg_scale=0.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
        neg_schedule="constant", terms=attention_term(neg))
    readout = output.ui.as_dict()["text"][0]
    assert "(1 at cfg 1)" in readout and "no extra model evaluation" in readout
    counted = Recorder()
    model = output.args[0].clone()
    model.set_model_unet_function_wrapper(counted)
    with caplog.at_level(logging.INFO):
        sample(family, model, p, n, steps=3, cfg=1.0)
    assert counted.conds_per_call() == [1, 1, 1]
    assert "this run made 3 model calls over 3 steps (1 model evaluation per step)" in caplog.text
    assert "attention-space negatives per model call (no extra model pass): 1 (steps 0–2)" in caplog.text

    import tiny_families as tf

    clip = tf.clip(family)
    eq8 = call_node("NegativeTerm", conditioning=encode(family, "watermark"), weight=2.0, start=0.5, end=1.0,
                    window_unit="steps", schedule="constant")[0]
    calls = {}
    for name, terms in (("eq8", eq8), ("eq8+nag", attention_term(neg, terms=eq8))):
        counted = Recorder()
        model = guidance_cfg(base, terms, mode="independent", neg_scale=2.0, clip=clip).clone()
        model.set_model_unet_function_wrapper(counted)
        sample(family, model, p, n, steps=4, cfg=3.0)
        calls[name] = counted.conds_per_call()
    assert calls["eq8+nag"] == calls["eq8"] == [2, 2, 4, 4]  # c_u = 1 − 3 + 2 = 0: p, n; then the term and u


@pytest.mark.parametrize("family", ["sd1", "flux"])
def test_it_guides_the_positive_and_pulling_terms_never_u_nor_pushed_branches(family):
    """Independent mode at cfg 3 with a NegativeTerm of weight −1 (it pulls toward its prompt): the batch is
    [p, n, term, u]; the negative's attention is computed for p's and the term's rows only."""
    import tiny_families

    p, n, neg = encode(family, TEXT), encode(family, NEGATIVE), encode(family, OTHER)
    pull = call_node("NegativeTerm", conditioning=encode(family, "watermark"), weight=-1.0, start=0.0, end=1.0,
                     window_unit="steps", schedule="constant")[0]
    calls = []
    below = hook(tiny_families.model(family), family, lambda q, k, v, options, out, heads, split: calls.append(
        (q, list(options["cond_or_uncond"]))), above=False)
    sample(family, guidance_cfg(below, attention_term(neg, terms=pull), mode="independent", neg_scale=2.0,
                                clip=tiny_families.clip(family)), p, n, steps=1, cfg=3.0)
    positive = next(c for c in calls if len(c[1]) == 4)  # the layer's own attention: every row
    negative = next(c for c in calls if len(c[1]) < 4)  # the negative's: the guided rows alone, labelled as such
    assert sorted(negative[1]) == [0, 2]  # p and the term
    assert sorted(positive[1]) == [0, 1, 2, 3]  # p, n, the term, u (in ComfyUI's batch order)
    rows = positive[0].shape[0] // 4
    chunks = [positive[0][j * rows:(j + 1) * rows] for j, slot in enumerate(positive[1]) if slot in (0, 2)]
    image = (lambda q: q.narrow(q.ndim - 2, q.shape[-2] - image_tokens(family), image_tokens(family))
             ) if family in JOINT else (lambda q: q)  # joint: the part's queries are [txt⁻, img]
    torch.testing.assert_close(image(negative[0]), image(torch.cat(chunks)), rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_no_patch_leaks_into_the_source_model(family):
    import copy

    import tiny_families

    p, n, neg = encode(family, TEXT), encode(family, NEGATIVE), encode(family, OTHER)
    base = tiny_families.model(family)
    before = copy.deepcopy(base.model_options)
    first = sample(family, base, p, n, steps=2, cfg=3.0)
    sample(family, guidance_cfg(base, attention_term(neg)), p, n, steps=2)
    assert repr(base.model_options) == repr(before)
    assert torch.equal(sample(family, base, p, n, steps=2, cfg=3.0), first)


def capture(family, model, negative_text):
    import tiny_families

    return call_node("AttentionCapture", model=model, clip=tiny_families.clip(family), positive_text=TEXT,
                     negative_text=negative_text, positive_words="", negative_words="", special_tokens=False,
                     max_mb=64.0, over_cap="error")


@pytest.mark.parametrize("family", FAMILIES)
def test_the_capture_records_the_negative_at_cfg_1_above_or_below_and_changes_nothing(family):
    """The capture below the guidance patch (applied first) or on top of it: the samples equal the uncaptured run bit
    for bit; the attention-space negative is the "negative" branch at every step, with its effect map; with the
    negative's text equal to the positive's, its maps equal the positive's, so r = 1 (as with a CFG negative)."""
    import json

    import tiny_families

    base = tiny_families.model(family)
    p = encode(family, TEXT)
    for negative_text in (NEGATIVE, TEXT):
        neg = encode(family, negative_text)
        reference = sample(family, guidance_cfg(base, attention_term(neg)), p, neg)
        below, handle_below, cp, cn = capture(family, base, negative_text)
        samples_below = sample(family, guidance_cfg(below, attention_term(cn)), cp, cn)
        captured, handle_above, cp2, cn2 = capture(family, guidance_cfg(base, attention_term(encode(
            family, negative_text))), negative_text)
        samples_above = sample(family, captured, cp2, cn2)
        assert torch.equal(samples_below, reference) and torch.equal(samples_above, reference)
        for handle in (handle_below, handle_above):
            store = handle.recorder.finished
            assert store.steps() == [0, 1, 2] and store.branches() == {"positive", "negative"}
            assert {term for _, term in store.effects} == {"attention"}
            assert len(store.layers(0, "negative")) == len(store.layers(0, "positive"))
        effect = handle_below.recorder.finished.effects[(1, "attention")].float()
        batch, _, *dims = tiny_families.latent_shape(family, 2)
        assert effect.shape == (batch, *dims)
        assert (effect.max() == 0) == (negative_text == TEXT)  # |Z − Z⁺| = 0 when Z⁻ = Z⁺
        above = handle_above.recorder.finished.layers(1, "negative")
        for layer, maps in handle_below.recorder.finished.layers(1, "negative").items():
            torch.testing.assert_close(maps.float(), above[layer].float())
        if negative_text == TEXT:
            data = json.loads(call_node("AttentionRt", capture=handle_below, samples={"samples": samples_below},
                                        score="frobenius", gate_fraction=0.5, related="",
                                        filename_prefix=f"nag/{family}")[0])
            for word in ("photo", "cat"):  # content words: r(i) is the word itself (function words never are)
                curve = data["curves"][word]
                assert curve["related"] == word and curve["r"] == pytest.approx([1.0] * 3, rel=1e-3)


@pytest.mark.parametrize("family", AREAS)
def test_an_area_prompt_beside_an_attention_negative_and_a_capture_changes_nothing(family):
    """The positive combined with an area prompt: the area's rows are guided in their own crop-sized forward, and the
    capture's effect map of the negatives is taken from the forwards over the whole latent only (the crop's |Z − Z⁺|
    was spread over the whole image): the samples equal the uncaptured run bit for bit, and at step 0, where the
    latent is the same noise, the effect map equals that of the run without the area prompt."""
    import tiny_families

    base, neg = tiny_families.model(family), encode(family, NEGATIVE)
    captured, handle, cp, cn = capture(family, guidance_cfg(base, attention_term(neg)), NEGATIVE)
    combined = call_node("ConditioningCombine", conditioning_1=cp, conditioning_2=in_area(encode(family, OTHER)))[0]
    reference = sample(family, guidance_cfg(base, attention_term(neg)), combined, cn)
    assert torch.equal(sample(family, captured, combined, cn), reference)
    alone, plain, pp, pn = capture(family, guidance_cfg(base, attention_term(neg)), NEGATIVE)
    sample(family, alone, pp, pn)
    effect = handle.recorder.finished.effects[(0, "attention")]
    assert torch.equal(effect, plain.recorder.finished.effects[(0, "attention")]) and effect.max() > 0


def test_the_attention_effect_map_is_every_layers_change_by_hand():
    """The capture's "attention" effect map at cfg 1 against |Z − Z⁺| by hand: a hook above each cross-attention
    layer sees q, k, v and Z (the guided output); Z⁺ is plain attention over the prompt's keys; |Z − Z⁺| averaged over
    channels, upsampled (nearest) to the latent and averaged over the layers. 1e-3 (the map is stored in fp16)."""
    import tiny_families
    import torch.nn.functional as F

    base, neg = tiny_families.model("sd1"), encode("sd1", NEGATIVE)
    captured, handle, cp, cn = capture("sd1", guidance_cfg(base, attention_term(neg)), NEGATIVE)
    t_pos, by_hand = cp[0][0].shape[1], []
    hooked = captured.clone()
    replaces = hooked.model_options["transformer_options"]["patches_replace"]["attn2"]
    for key, inner in list(replaces.items()):
        def attn2(q, k, v, extra, inner=inner):
            out = inner(q, k, v, extra)
            heads = extra["n_heads"]
            q_, k_, v_ = (heads_first(x, heads, False) for x in (q, k[:, :t_pos], v[:, :t_pos]))
            change = (out.double() - attention(q_, k_, v_)).abs().mean(dim=-1)  # (B, N)
            grid = tuple(extra["activations_shape"][-2:])
            by_hand.append(F.interpolate(change.view(-1, 1, *grid), size=(8, 8), mode="nearest").view(-1, 8, 8))
            return out

        attn2.__wrapped__ = inner
        hooked.set_model_attn2_replace(attn2, *key)
    sample("sd1", hooked, cp, cn, steps=1)
    recorded = handle.recorder.finished.effects[(0, "attention")].double()
    expected = torch.stack(by_hand).mean(dim=0)
    torch.testing.assert_close(recorded, expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item())
    assert expected.max() > 0


@pytest.mark.parametrize("family", ["sd1", "flux"])
def test_a_capture_beside_the_negatives_adds_no_attention_call(family):
    """The capture and the negatives share one site: a capture records each text's maps from the queries and keys
    the guided call already has, so a hook below sees the same attention calls with and without it at cfg 1 (in the
    merged joint form the capture below the negatives' hooks needed one more call per text, whose output nobody read),
    and one site's hooks are installed, whichever node comes first."""
    import tiny_families

    neg = encode(family, NEGATIVE)
    site = pack_module("nodes.site")
    counts, models = {}, {}
    for name in ("negatives", "capture first", "capture last"):
        seen = counts.setdefault(name, [])
        below = hook(tiny_families.model(family), family, lambda *call, seen=seen: seen.append(1), above=False)
        if name == "negatives":
            model, p, n = guidance_cfg(below, attention_term(neg)), encode(family, TEXT), neg
        elif name == "capture first":
            captured, _, p, n = capture(family, below, NEGATIVE)
            model = guidance_cfg(captured, attention_term(n))
        else:
            model, _, p, n = capture(family, guidance_cfg(below, attention_term(neg)), NEGATIVE)
        sample(family, model, p, n, steps=2)
        models[name] = model
    assert len(counts["capture first"]) == len(counts["capture last"]) == len(counts["negatives"]) > 0
    for name in ("capture first", "capture last"):
        joined = site.site_of(models[name].model_options)
        assert joined.recorder is not None and joined.negatives == "NegativeGuidanceCFG"
        installed = joined.family.installed_hooks(models[name].model_options)
        assert all(hook in site.wrapped_chain(installed.get(key)) for key, hook in joined.hooks.items())


def test_a_capture_of_the_positive_alone_beside_an_attention_negative_changes_nothing():
    """AttentionCapture with an empty negative_text and an attention-space negative below it (it raised
    KeyError: 'negative' at the first step): the positive is recorded and the samples equal the uncaptured run."""
    import tiny_families

    base, p, neg = tiny_families.model("sd1"), encode("sd1", TEXT), encode("sd1", NEGATIVE)
    reference = sample("sd1", guidance_cfg(base, attention_term(neg)), p, neg)
    captured, handle, cp, _ = capture("sd1", guidance_cfg(base, attention_term(neg)), "")
    assert torch.equal(sample("sd1", captured, cp, neg), reference)
    assert handle.recorder.finished.branches() == {"positive"}


def test_an_earlier_attn2_replace_that_splits_rows_by_cond_or_uncond_is_handed_matching_labels():
    """An IP-Adapter-style attn2 replace applied before the pack splits q's rows per label of cond_or_uncond. At cfg
    3 the negative's part call holds the positive's rows only: its cond_or_uncond and uuids say so (they held the
    whole batch's, so each label got half a row set, and a batch of 1 crashed), and the samples equal the run where
    the replace is plain attention."""
    import tiny_families

    import comfy.ldm.modules.attention as comfy_attention

    unet = pack_module("nodes.families.unet")
    seen = []

    def split_by_label(q, k, v, extra):
        labels = extra["cond_or_uncond"]
        assert len(labels) == len(extra["uuids"]) and q.shape[0] % len(labels) == 0
        seen.append((tuple(labels), q.shape[0] // len(labels)))
        return comfy_attention.optimized_attention(q, k, v, extra["n_heads"], attn_precision=extra["attn_precision"],
                                                   transformer_options=extra)

    p, n, neg = encode("sd1", TEXT), encode("sd1", NEGATIVE), encode("sd1", OTHER)
    plain = tiny_families.model("sd1")
    reference = sample("sd1", guidance_cfg(plain, attention_term(neg)), p, n, cfg=3.0)
    base = tiny_families.model("sd1")
    for block in {layer.block for layer in unet.layers(base.model.diffusion_model, (1, 1))}:
        base.set_model_attn2_replace(split_by_label, *block)
    samples = sample("sd1", guidance_cfg(base, attention_term(neg)), p, n, cfg=3.0)
    assert {size for _, size in seen} == {2}  # every label's rows are the batch of 2
    assert ((0,), 2) in seen  # the negative's part call: the positive's rows, labelled as such
    assert any(len(labels) == 2 for labels, _ in seen)  # the layer's own call: p and n
    torch.testing.assert_close(samples, reference, rtol=0, atol=0)


def test_perturbed_attention_guidance_perturbs_the_negative_guided_positive():
    """PAG's post-CFG pass evaluates the positive again with the middle block's self-attention replaced by v: it gets
    the step's attention-space negatives too. Oracle, one Euler step at cfg 1 (the output is the prediction):
    PAG(s) = A + s·(A − B), A the guided run, B the guided run with PAG's perturbation wired by hand (without the
    negatives in its pass, PAG multiplied the negative's effect by 1 + s)."""
    import tiny_families

    scale = 3.0
    p, neg = encode("sd1", TEXT), encode("sd1", NEGATIVE)
    guided = guidance_cfg(tiny_families.model("sd1"), attention_term(neg))
    pag = call_node("PerturbedAttentionGuidance", model=guided, scale=scale)[0]
    perturbed = guided.clone()
    perturbed.set_model_attn1_replace(lambda q, k, v, extra: v, "middle", 0)
    a, b, ours = (sample("sd1", m, p, p, steps=1) for m in (guided, perturbed, pag))
    oracle = a + scale * (a - b)
    assert ((ours - oracle).abs().max() / oracle.abs().max()).item() <= 1e-5


def test_self_attention_guidance_adds_its_own_term_unchanged_beside_the_negatives():
    """SAG (allowed where ū = n: standard mode, here at cfg 3) re-evaluates the sampler's negative, blurred where its
    middle-block self-attention looks, and adds s·(n − n_blurred). The negatives never guide n's rows, so SAG's term
    is the same with them and without. Oracle, one Euler step (the output is the prediction):
    x̂(SAG, NAG) − x̂(NAG) = x̂(SAG) − x̂(plain), to 1e-5 of the prediction, and the negatives still act."""
    import tiny_families

    p, n, neg = encode("sd1", TEXT), encode("sd1", OTHER), encode("sd1", NEGATIVE)
    base = tiny_families.model("sd1")
    runs = {}
    for name, model in (("plain", guidance_cfg(base)), ("nag", guidance_cfg(base, attention_term(neg)))):
        sag = call_node("SelfAttentionGuidance", model=model, scale=0.5, blur_sigma=2.0)[0]
        runs[name], runs[f"sag {name}"] = (sample("sd1", m, p, n, steps=1, cfg=3.0) for m in (model, sag))
    sag_term, oracle = runs["sag nag"] - runs["nag"], runs["sag plain"] - runs["plain"]
    assert sag_term.abs().max() > 1e-2 * runs["plain"].abs().max()  # SAG acts
    assert (sag_term - oracle).abs().max() <= 1e-5 * runs["plain"].abs().max()
    assert (runs["nag"] - runs["plain"]).abs().max() > 1e-2 * runs["plain"].abs().max()  # and so do the negatives


def test_a_captured_negative_whose_attention_term_never_runs_is_explained_by_that_term():
    """At cfg 1 the captured negative is an AttentionNegativeTerm's: when its window holds no step, AttentionRt
    names that window (it blamed the main negative's neg_scale)."""
    import tiny_families

    base = tiny_families.model("sd1")
    term = attention_term(encode("sd1", NEGATIVE), start=0.9, end=0.9)
    captured, handle, cp, cn = capture("sd1", guidance_cfg(base, term), NEGATIVE)
    samples = sample("sd1", captured, cp, cn)
    with pytest.raises(ValueError, match=r"AttentionRt: the negative prompt was never evaluated in this run: "
                                         r"NegativeGuidance switched it off at every step: the window of the "
                                         r"AttentionNegativeTerm that carries it, start 0.9–end 0.9 \(steps\) holds "
                                         r"no step of this 3-step run"):
        call_node("AttentionRt", capture=handle, samples={"samples": samples}, score="frobenius", gate_fraction=0.5,
                  related="", filename_prefix="nag/never")


SKIPS = [("flux", "SkipLayerGuidanceDiT", "double_block", 0), ("flux", "SkipLayerGuidanceDiT", "single_block", 0),
         ("sd3", "SkipLayerGuidanceSD3", "double_block", 0), ("sd3", "SkipLayerGuidanceSD3", "double_block", 1)]


@pytest.mark.parametrize("family, node, kind, index", SKIPS, ids=[f"{s[1]} {s[2]} {s[3]}" for s in SKIPS])
def test_skip_layer_guidance_perturbs_the_negative_guided_positive(family, node, kind, index):
    """SkipLayerGuidanceDiT (and SkipLayerGuidanceSD3, its double-block form) at scale s skips one block in its
    post-CFG pass. Oracle, one Euler step at cfg 1 (the output is the prediction): SLG(s) = A + s·(A − B), A the
    guided run and B that run with the block skipped by hand. A later block's pass keeps the negatives; where it skips
    the first block, which appends the negatives' text, the pass runs without them, so B is the unguided model with
    that block skipped (this case crashed on the missing layout)."""
    import tiny_families

    scale = 3.0
    p, neg = encode(family, TEXT), encode(family, NEGATIVE)
    guided = guidance_cfg(tiny_families.model(family), attention_term(neg))
    window = dict(scale=scale, start_percent=0.0, end_percent=1.0)
    if node == "SkipLayerGuidanceDiT":
        layers = {"double_block": (str(index), ""), "single_block": ("", str(index))}[kind]
        slg = call_node(node, model=guided, double_layers=layers[0], single_layers=layers[1], rescaling_scale=0.0,
                        **window)[0]
    else:
        slg = call_node(node, model=guided, layers=str(index), **window)[0]
    first = (kind, index) == ("double_block", 0)
    skipped = (tiny_families.model(family) if first else guided).clone()
    hook = skipped.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {}).get(
        (kind, index))

    def skip(args, extra):  # what SLG puts in the block's place: its input, unchanged
        return args

    skip.__wrapped__ = hook  # the pack's run check sees its hook in the chain
    skipped.set_model_patch_replace(skip, "dit", kind, index)
    a, b, ours = (sample(family, m, p, p, steps=1) for m in (guided, skipped, slg))
    oracle = a + scale * (a - b)
    assert ((ours - oracle).abs().max() / oracle.abs().max()).item() <= 1e-5


def test_the_merged_joint_form_is_taken_where_the_kernel_and_the_dtype_allow_it(comfy):
    """ComfyUI's own attention functions as the override receives them: every one but SageAttention's takes the sink's
    8 extra channels per head; bf16 and fp32 keep the shares, fp16 would flush them (nodes/nag.py ``merges``)."""
    import comfy.ldm.modules.attention as comfy_attention

    merges = pack_module("nodes.nag").merges
    for name in ("attention_basic", "attention_split", "attention_sub_quad", "attention_pytorch", "attention_flash"):
        func = getattr(comfy_attention, name).__wrapped__
        assert merges(func, torch.bfloat16) and merges(func, torch.float32) and not merges(func, torch.float16)
    assert not merges(comfy_attention.attention_sage.__wrapped__, torch.bfloat16)


def with_backend(model, head_dims: list):
    """A clone of ``model`` with a SageAttention-style backend set through set_model_optimized_attention, as
    ModelAttentionBackend and the SageAttention patches set theirs (the last writer wins): ComfyUI's own attention
    function, recording the per-head width of every q it is handed (a sage kernel takes 64, 96 or 128 only)."""
    import comfy.ldm.modules.attention as comfy_attention

    own = comfy_attention.optimized_attention

    def attention_sage(q, k, v, heads, *args, skip_reshape=False, **kwargs):
        head_dims.append(q.shape[-1] if skip_reshape else q.shape[-1] // heads)
        return own(q, k, v, heads, *args, skip_reshape=skip_reshape, **kwargs)

    backend = model.clone()
    backend.set_model_optimized_attention(attention_sage)
    return backend


def needs_backends():
    import comfy.model_patcher

    if not hasattr(comfy.model_patcher.ModelPatcher, "set_model_optimized_attention"):
        pytest.skip("this ComfyUI has no set_model_optimized_attention (ModelAttentionBackend came with v0.4)")


@pytest.mark.parametrize("family", ["sd1", "wan21", "flux", "qwen_image"])
def test_an_attention_backend_applied_before_the_negatives_runs_every_attention_of_theirs_exactly(family):
    """A backend set before the pack: the site's hooks chain over it, so every attention (the negatives' too) runs
    through the backend, no q carries the merged form's 8 sink channels per head (the tiny models' heads are 16 or 32
    wide), and the one-layer oracle holds at cfg 1 and 2 (the four equations on plain softmax attention, 1e-5)."""
    import tiny_families

    needs_backends()
    head_dims = []
    for cfg in (1.0, 2.0):
        check_one_layer(family, cfg, with_backend(tiny_families.model(family), head_dims))
    assert head_dims and {d % 16 for d in head_dims} == {0}


@pytest.mark.parametrize("family", ["sd1", "flux"])
def test_an_attention_backend_applied_after_the_negatives_is_exact_on_unets_and_refused_on_dits(family):
    """ModelAttentionBackend applied after the pack. A UNet's site is its attn2 replaces, which call ComfyUI's
    attention through the override: the samples equal those without the backend bit for bit, and the backend ran.
    A DiT's site is the attention override the backend replaces without chaining: refused before the first step,
    naming ModelAttentionBackend and the fix (it silently dropped the negatives)."""
    import tiny_families

    needs_backends()
    p, n, neg = encode(family, TEXT), encode(family, NEGATIVE), encode(family, OTHER)
    guided = guidance_cfg(tiny_families.model(family), attention_term(neg))
    head_dims, steps = [], []
    backend = with_backend(guided, head_dims)
    if family in UNETS:
        torch.testing.assert_close(sample(family, backend, p, n), sample(family, guided, p, n), rtol=0, atol=0)
        assert head_dims
        return
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: a node applied after NegativeGuidanceCFG replaced the "
                                         r"attention hook optimized_attention_override \(ModelAttentionBackend or a "
                                         r"SageAttention patch .*\)\)\. Apply NegativeGuidanceCFG after that node"):
        sample(family, backend, p, n, callback=lambda *a: steps.append(a))
    assert steps == [] and head_dims == []


def test_a_node_that_replaces_its_hooks_later_is_refused(comfy):
    import tiny_families

    p, n = encode("sd1", TEXT), encode("sd1", NEGATIVE)
    model = guidance_cfg(tiny_families.model("sd1"), attention_term(n)).clone()
    key, _ = first_cross_block(model)
    model.set_model_attn2_replace(lambda q, k, v, extra: q, *key)  # an attn2 replace that does not chain
    installed_by = "^NegativeGuidanceCFG: a node applied after NegativeGuidanceCFG replaced the attention hook"
    with pytest.raises(ValueError, match=installed_by):
        sample("sd1", model, p, n)
    shadowed = guidance_cfg(tiny_families.model("sd1"), attention_term(n)).clone()
    shadowed.set_model_attn2_replace(lambda q, k, v, extra: q, *key, 0)  # IP-Adapter's (block, id, index) key
    with pytest.raises(ValueError, match=installed_by):  # [prompt, negative] as one context: the negative became
        sample("sd1", shadowed, p, n)  # part of the prompt
    captured, _, cp, cn = capture("sd1", tiny_families.model("sd1"), NEGATIVE)  # the capture installed the site,
    between = captured.clone()  # a node replaced a hook, and the negatives joined after it: the fix names the capture
    between.set_model_attn2_replace(lambda q, k, v, extra: q, *key)  # (which checks first, before the negatives)
    with pytest.raises(ValueError, match=r"^AttentionCapture: a node applied after AttentionCapture replaced the "
                                         r"attention hook .* Apply AttentionCapture after that node"):
        sample("sd1", guidance_cfg(between, attention_term(cn)), cp, cn)


@pytest.mark.parametrize("order", ["NAGuidance first", "NAGuidance last"])
def test_core_naguidance_beside_the_patch_is_refused_before_sampling(order):
    """Core NAGuidance takes the CFG negative's rows of each call as its negative; the patch evaluates that negative
    only where its plan needs it (at cfg 1 in standard mode never, so NAGuidance silently did nothing). Either order:
    refused before the first step, naming NAGuidance and the AttentionNegativeTerm that replaces it."""
    import tiny_families

    import nodes

    if "NAGuidance" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this ComfyUI has no core NAGuidance")
    p, n, neg = encode("sd1", TEXT), encode("sd1", NEGATIVE), encode("sd1", OTHER)

    def nag(model):
        return call_node("NAGuidance", model=model, nag_scale=5.0, nag_alpha=0.5, nag_tau=1.5)[0]

    base = tiny_families.model("sd1")
    model = (guidance_cfg(nag(base), attention_term(neg)) if order == "NAGuidance first"
             else nag(guidance_cfg(base, attention_term(neg))))
    steps = []
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: the model also carries NAGuidance .* give its "
                                         r"negative to an AttentionNegativeTerm \(scale = nag_scale − 1"):
        sample("sd1", model, p, n, callback=lambda *a: steps.append(a))
    assert steps == []


def test_multigpu_cfg_split_is_exact_on_one_device_and_refused_over_several():
    """MultiGPU CFG Split (MultiGPU_WorkUnits) runs a step's conditionings in threads on copies of the model; the
    site's hooks hold one copy's weights and one call's state. On this one-device machine it makes no copy: the
    samples equal the run without it bit for bit. Given a copy (as it keeps them, under the additional-models key
    'multigpu'), the negatives and the capture are refused before the first step, naming it."""
    import tiny_families

    import nodes

    p, n, neg = encode("sd1", TEXT), encode("sd1", NEGATIVE), encode("sd1", OTHER)
    guided = guidance_cfg(tiny_families.model("sd1"), attention_term(neg))
    if "MultiGPU_WorkUnits" in nodes.NODE_CLASS_MAPPINGS:
        split = call_node("MultiGPU_WorkUnits", model=guided, max_gpus=2)[0]
        assert torch.equal(sample("sd1", split, p, n), sample("sd1", guided, p, n))
    captured, _, cp, cn = capture("sd1", tiny_families.model("sd1"), NEGATIVE)
    steps = []
    for model, node, conds in ((guided, "NegativeGuidanceCFG", (p, n)), (captured, "AttentionCapture", (cp, cn))):
        split = model.clone()
        split.set_additional_models("multigpu", [model.clone()])
        with pytest.raises(ValueError, match=rf"^{node}: the model is split over 2 devices by MultiGPU CFG Split"):
            sample("sd1", split, *conds, callback=lambda *a: steps.append(a))
    assert steps == []


def test_ppm_negpip_beside_the_capture_or_the_negatives_is_refused_naming_it():
    """ppm's CLIP NegPip interleaves a key and a value embedding per token and flags the model and the CLIP it
    patches with 'ppm_negpip' (set here by hand: ppm is not installed). AttentionCapture given either is refused when
    it runs, naming CLIP NegPip (it said "positive context has 154 tokens where … gives 77"); attention-space
    negatives on its model, in either order, and a capture whose model it patched later, are refused before the first
    step."""
    import tiny_families

    def flagged(patcher):
        patcher.model_options["ppm_negpip"] = True
        return patcher

    p, n, neg = encode("sd1", TEXT), encode("sd1", NEGATIVE), encode("sd1", OTHER)
    base, clip = tiny_families.model("sd1"), tiny_families.clip("sd1")
    negpip_clip = clip.clone()
    flagged(negpip_clip.patcher)
    for model, clip_in, what in ((flagged(base.clone()), clip, "input 'model'"), (base, negpip_clip, "input 'clip'")):
        with pytest.raises(ValueError, match=rf"^AttentionCapture: {what} comes from CLIP NegPip \(ppm\)"):
            call_node("AttentionCapture", model=model, clip=clip_in,
                      positive_text=TEXT, negative_text=NEGATIVE, positive_words="", negative_words="",
                      special_tokens=False, max_mb=64.0, over_cap="error")
    steps = []
    captured, _, cp, cn = capture("sd1", base, NEGATIVE)
    with pytest.raises(ValueError, match=r"^AttentionCapture: the model comes from CLIP NegPip \(ppm\)"):
        sample("sd1", flagged(captured.clone()), cp, cn, callback=lambda *a: steps.append(a))
    for model in (guidance_cfg(flagged(base.clone()), attention_term(neg)),
                  flagged(guidance_cfg(base, attention_term(neg)).clone())):
        with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: the model comes from CLIP NegPip \(ppm\)"):
            sample("sd1", model, p, n, callback=lambda *a: steps.append(a))
    assert steps == []


def test_bad_input_is_refused_before_sampling(comfy):
    import math

    import tiny_families

    import nodes

    node = nodes.NODE_CLASS_MAPPINGS["AttentionNegativeTerm"]
    good = dict(scale=4.0, tau=2.5, alpha=0.25, start=0.0, end=1.0, window_unit="steps", schedule="constant")
    for name, value, fix in (("scale", math.nan, "give a number from 0 to 100"), ("scale", -1.0, "from 0 to 100"),
                             ("tau", math.nan, "from 1 to 100"), ("tau", -2.0, "from 1 to 100"),
                             ("alpha", 1.5, "from 0 to 1"), ("alpha", -0.1, "from 0 to 1")):
        message = node.validate_inputs(**good | {name: value})
        assert message.startswith(f"AttentionNegativeTerm: input '{name}' is") and fix in message, message
    assert node.validate_inputs(**good) is True
    sd1, flux = encode("sd1", TEXT), encode("flux", NEGATIVE)
    with pytest.raises(ValueError, match="AttentionNegativeTerm: input 'alpha': must lie in"):
        attention_term(sd1, alpha=2.0)
    with pytest.raises(ValueError, match="holds 2 prompts"):
        attention_term(sd1 + sd1)
    with pytest.raises(ValueError, match="NegativeGuidanceCFG: input 'terms' has context width 4096, but the model "
                                         "has 768: it was encoded by the CLIP of another model family"):
        guidance_cfg(tiny_families.model("sd1"), attention_term(flux))
    model = guidance_cfg(tiny_families.model("flux"), attention_term(sd1))  # its width is known from the positive
    steps = []
    with pytest.raises(ValueError, match="NegativeGuidanceCFG: input 'terms' has context width 768, but the "
                                         "positive prompt has 4096"):
        sample("flux", model, flux, flux, callback=lambda *a: steps.append(a))
    assert steps == []
    with pytest.raises(ValueError, match="NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         "its diffusion model NextDiT"):
        guidance_cfg(tiny_families.model("lumina2"), attention_term(encode("lumina2", NEGATIVE)))
    with pytest.raises(ValueError, match="NegativeGuidanceCFG: input 'terms' holds an AttentionNegativeTerm, but "
                                         "its diffusion model ChromaRadiance .* pixels in 16×16 patches"):
        guidance_cfg(tiny_families.model("chroma_radiance"), attention_term(encode("chroma_radiance", NEGATIVE)))


@pytest.mark.parametrize("name", ["10_cfg1_attention_negative", "11_flux_dev_cfg1_attention_negative"])
def test_the_cfg1_examples_make_one_model_evaluation_per_step(run_graph, caplog, name):
    """The toy example as shipped and the Flux dev one on the tiny Flux: at cfg 1, every sampler's run makes one
    model call of one conditioning per step, the attention-space negative inside it from 20% of the steps."""
    import examples
    import workflows

    prompt = examples.test_prompt(name, workflows.node_info)
    assert {n["inputs"]["cfg"] for n in prompt.values() if n["class_type"] == "KSampler"} == {1.0}
    with caplog.at_level(logging.INFO):
        run_graph(prompt)
    steps = next(n["inputs"]["steps"] for n in prompt.values() if n["class_type"] == "KSampler")
    start = int(0.2 * steps)
    assert (f"this run made {steps} model calls over {steps} steps (1 model evaluation per step), which evaluated "
            f"{steps} conditionings and {steps - start} attention-space negatives") in caplog.text
