"""Other CFG patches keep working on top of ours; bad input fails before the first step; the model is never changed."""

import logging
import math

import graphs
import pytest
import torch
from comfy_helpers import Recorder, call_node, patched, sample


def first_call(model):
    """A clone that records the post-CFG args of its first model call: (input, σ, p, ū, x̂, cfg)."""
    seen = []

    def record(args):
        if not seen:
            seen.append(args)
        return args["denoised"]

    clone = model.clone()
    clone.set_model_sampler_post_cfg_function(record)
    return clone, seen


def first_denoised(t, model, cfg=7.0):
    """The denoised output of the first model call, after every hook (the sampler's own callback sees it)."""
    seen = []
    sample(t, model, cfg=cfg, callback=lambda step, x0, x, total: seen.append(x0) if step == 0 else None)
    return seen[0]


@pytest.fixture
def ours_at_first_call(tiny):
    model, seen = first_call(patched(tiny, tiny.model(), neg_start=0.0))
    sample(tiny, model)
    args = seen[0]
    x, p, u_bar, out = args["input"], args["cond_denoised"], args["uncond_denoised"], args["denoised"]
    sigma = args["sigma"].view(-1, 1, 1, 1)
    torch.testing.assert_close(out, u_bar + (p - u_bar) * 7.0)  # the pair that ComfyUI's hooks see
    return x, sigma, p, u_bar, out


def test_rescale_cfg_applies_its_formula_to_our_output(tiny, ours_at_first_call):
    x, sigma, p, _, out = ours_at_first_call
    multiplier = 0.7
    rescaled = call_node("RescaleCFG", model=patched(tiny, tiny.model()), multiplier=multiplier)[0]
    got = first_denoised(tiny, rescaled)
    # RescaleCFG (Lin et al. 2024) in v space, v = (x/(σ²+1) − x0)·√(σ²+1)/σ: the cfg result's std matched to the cond's
    scaled = x / (sigma**2 + 1)
    to_v = (sigma**2 + 1) ** 0.5 / sigma
    v_cond, v_cfg = (scaled - p) * to_v, (scaled - out) * to_v
    std = lambda v: v.std(dim=(1, 2, 3), keepdim=True)  # noqa: E731
    v_final = multiplier * v_cfg * std(v_cond) / std(v_cfg) + (1 - multiplier) * v_cfg
    torch.testing.assert_close(got, scaled - v_final / to_v, rtol=1e-4, atol=1e-4)


def test_cfg_zero_star_applies_its_formula_to_our_output(tiny, ours_at_first_call):
    x, _, p, u_bar, out = ours_at_first_call
    zero_star = call_node("CFGZeroStar", model=patched(tiny, tiny.model()))[0]
    got = first_denoised(tiny, zero_star)
    # CFG-Zero* (Fan et al. 2025): α = ⟨v_c, v_u⟩/‖v_u‖², out + ū(α − 1) + s·ū(1 − α), per sample
    v_c, v_u = (x - p).flatten(1), (x - u_bar).flatten(1)
    alpha = ((v_c * v_u).sum(1) / ((v_u**2).sum(1) + 1e-8)).view(-1, 1, 1, 1)
    torch.testing.assert_close(got, out + u_bar * (alpha - 1) + 7.0 * u_bar * (1 - alpha), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("node, inputs", [("APG", dict(eta=0.0, norm_threshold=5.0, momentum=-0.5)),
                                          ("PerturbedAttentionGuidance", dict(scale=3.0)),
                                          ("SelfAttentionGuidance", dict(scale=0.5, blur_sigma=2.0))])
def test_hooks_on_top_of_standard_mode_equal_the_hooks_on_the_ksampler(tiny, node, inputs):
    """Standard mode hands ComfyUI's cfg hooks exactly the KSampler's (p, n): APG, PAG and SAG give the same
    latents bit for bit."""
    ours = sample(tiny, call_node(node, model=patched(tiny, tiny.model(), mode="standard"), **inputs)[0])
    oracle = sample(tiny, call_node(node, model=tiny.model(), **inputs)[0])
    assert torch.equal(ours, oracle)


@pytest.mark.parametrize("sampler", ["euler_cfg_pp", "euler_ancestral_cfg_pp", "dpmpp_2m_cfg_pp"])
def test_cfg_pp_samplers_on_standard_mode_equal_them_on_the_ksampler(tiny, sampler):
    """CFG++ samplers read the uncond prediction through a post-CFG hook: standard mode hands them the KSampler's."""
    ours = sample(tiny, patched(tiny, tiny.model(), mode="standard"), sampler=sampler)
    assert torch.equal(ours, sample(tiny, tiny.model(), sampler=sampler))


@pytest.mark.parametrize("settings", [dict(mode="independent"), dict(mode="standard", neg_start=0.5)])
def test_sag_is_refused_where_the_effective_uncond_is_not_the_samplers_negative(tiny, settings):
    """SAG re-evaluates the KSampler's negative and mixes it with ū: right only when ū = n at every step."""
    sag = call_node("SelfAttentionGuidance", model=patched(tiny, tiny.model(), **settings), scale=0.5,
                    blur_sigma=2.0)[0]
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: SelfAttentionGuidance re-evaluates the sampler's "
                                         "negative prompt"):
        sample(tiny, sag)


def snapshot(model):
    return repr(model.model_options), repr(model.wrappers), repr(model.patches), repr(model.object_patches)


def test_the_source_model_is_never_mutated(tiny):
    model = tiny.model()
    before = snapshot(model)
    guider = call_node("NegativeGuidanceGuider", model=model, positive=tiny.p, negative=tiny.n, empty=tiny.u,
                       mode="independent", cfg=7.0, neg_scale=3.0, neg_start=0.2, neg_end=1.0, window_unit="steps",
                       neg_schedule="linear")[0]
    sample(tiny, patched(tiny, model, neg_start=0.25))
    import comfy.samplers

    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 4)
    guider.sample(tiny.noise, tiny.latent, comfy.samplers.sampler_object("euler"), sigmas, seed=42)
    assert snapshot(model) == before


def test_cost_is_reported_in_the_log_and_the_node_text(tiny, caplog):
    import nodes

    output = nodes.NODE_CLASS_MAPPINGS["NegativeGuidanceCFG"].execute(
        model=tiny.model(), clip=tiny.clip, mode="independent", neg_scale=3.0, neg_start=0.5, neg_end=1.0,
        window_unit="steps", neg_schedule="constant")
    assert output.ui.as_dict()["text"][0].startswith("2–3 conditionings per model call at the KSampler's cfg")
    with caplog.at_level(logging.INFO):
        sample(tiny, output.args[0], steps=6, sampler="heun")
    assert "NegativeGuidanceCFG: conditionings per model call: 2 (steps 0–2), 3 (steps 3–5)" in caplog.text
    assert ("NegativeGuidanceCFG: this run made 11 model calls over 6 steps (1.83 model evaluations per step), "
            "which evaluated 28 conditionings") in caplog.text


def test_the_guiders_readout_uses_its_own_cfg(tiny):
    """cfg 4, neg_scale 3: c_u = 1 − 4 + 3 = 0, so u is never evaluated: 2 conditionings per call."""
    import nodes

    output = nodes.NODE_CLASS_MAPPINGS["NegativeGuidanceGuider"].execute(
        model=tiny.model(), positive=tiny.p, negative=tiny.n, cfg=4.0, clip=tiny.clip, mode="independent",
        neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant")
    assert output.ui.as_dict()["text"][0].startswith("2 conditionings per model call, in one batch")


MAIN = dict(mode="independent", neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
            neg_schedule="constant")
OTHER_FAMILY = [[torch.zeros(1, 77, 768), {"pooled_output": torch.zeros(1, 768)}]]


@pytest.mark.parametrize("node", ["NegativeGuidanceCFG", "NegativeGuidanceGuider"])
@pytest.mark.parametrize(
    "change, input_name, message",
    [
        (dict(neg_scale=math.nan), "neg_scale", "finite"),
        (dict(neg_scale=math.inf), "neg_scale", "finite"),
        (dict(neg_start=0.7, neg_end=0.3), "neg_start", "after end"),
        (dict(neg_end=1.5), "neg_end", "[0, 1]"),
        (dict(neg_start=-0.2), "neg_start", "[0, 1]"),
        (dict(empty=OTHER_FAMILY), "empty", "context width 768"),
        (dict(empty=None), "empty", "is needed"),
        (dict(mode="standard", neg_start=0.3, empty=None), "empty", "is needed"),
        (dict(mode="standard", auto_start=0.05, empty=None), "empty", "auto_start's gate"),  # was a KeyError mid-run
        (dict(empty="dot", clip="tiny"), "empty", "is not the empty prompt of input 'clip'"),
    ],
)
def test_bad_input_names_the_node_and_the_input(tiny, node, change, input_name, message):
    import tiny as tiny_models

    inputs = MAIN | {"model": tiny.model(), "empty": tiny.u} | change
    if inputs["empty"] == "dot":
        inputs |= dict(empty=tiny_models.encode(tiny.clip, "dot"), clip=tiny.clip)
    if node == "NegativeGuidanceGuider":
        inputs |= dict(positive=tiny.p, negative=tiny.n, cfg=7.0)
    with pytest.raises(ValueError) as error:
        call_node(node, **inputs)
    assert str(error.value).startswith(f"{node}: input '{input_name}'")
    assert message in str(error.value)


@pytest.mark.parametrize("change, input_name", [(dict(cfg=math.nan), "cfg"), (dict(negative=OTHER_FAMILY), "negative")])
def test_bad_guider_input(tiny, change, input_name):
    inputs = MAIN | dict(model=tiny.model(), empty=tiny.u, positive=tiny.p, negative=tiny.n, cfg=7.0) | change
    with pytest.raises(ValueError, match=f"^NegativeGuidanceGuider: input '{input_name}'"):
        call_node("NegativeGuidanceGuider", **inputs)


@pytest.mark.parametrize("change, input_name", [(dict(weight=math.nan), "weight"), (dict(start=0.9, end=0.1), "start"),
                                                (dict(schedule="square"), "schedule")])
def test_bad_term_input(tiny, change, input_name):
    inputs = dict(conditioning=tiny.n, weight=2.0, start=0.0, end=1.0, window_unit="steps", schedule="constant")
    with pytest.raises(ValueError, match=f"^NegativeTerm: input '{input_name}'"):
        call_node("NegativeTerm", **inputs | change)


def test_a_term_from_another_family_is_refused(tiny):
    terms = call_node("NegativeTerm", conditioning=OTHER_FAMILY, weight=2.0, start=0.0, end=1.0,
                      window_unit="steps", schedule="constant")[0]
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: input 'terms' has context width 768"):
        patched(tiny, tiny.model(), terms=terms)


def test_a_guider_that_bypasses_the_patch_fails_before_the_first_step(tiny):
    import comfy.samplers

    model = tiny.model()
    recorder = Recorder()
    model.set_model_unet_function_wrapper(recorder)
    dual = call_node("DualCFGGuider", model=patched(tiny, model), cond1=tiny.p, cond2=tiny.u, negative=tiny.n,
                     cfg_conds=7.0, cfg_cond2_negative=4.0, style="regular")[0]
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 4)
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: the patched model went to Guider_DualCFG"):
        dual.sample(tiny.noise, tiny.latent, comfy.samplers.sampler_object("euler"), sigmas, seed=42)
    assert recorder.calls == []


def test_stacking_two_patches_is_refused(tiny):
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: input 'model' already carries negative guidance"):
        patched(tiny, patched(tiny, tiny.model()))


def test_a_later_batch_function_override_fails_before_the_first_step(tiny):
    model = tiny.model()
    recorder = Recorder()
    model.set_model_unet_function_wrapper(recorder)
    hijacked = patched(tiny, model).clone()
    hijacked.set_model_sampler_calc_cond_batch_function(lambda args: [args["input"], args["input"]])
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: a node applied after it replaced"):
        sample(tiny, hijacked)
    assert recorder.calls == []


def test_an_earlier_batch_function_is_refused_naming_it(tiny):
    """ppm's SkipFirstStepCFG-style hooks blank slot 1, taking it for the empty prompt: in our [p, n, u, …] batch
    that would zero the negative, so any earlier batch function is refused."""
    def skip_first_step(args):
        return [args["input"]] * len(args["conds"])

    skip_first_step.__module__ = "/home/someone/ComfyUI/custom_nodes/ComfyUI-ppm.nodes"  # as ComfyUI names it
    model = tiny.model().clone()
    model.set_model_sampler_calc_cond_batch_function(skip_first_step)
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: input 'model' carries ComfyUI-ppm.nodes.test_an_"
                                         ".*skip_first_step, a sampler_calc_cond_batch_function from an earlier node"):
        patched(tiny, model)


def test_a_guider_without_a_negative_is_refused_before_the_first_step(tiny):
    """BasicGuider hands the patch no negative: n would be 0 (a latent mean of 17928 against 0.58)."""
    import comfy.samplers

    basic = call_node("BasicGuider", model=patched(tiny, tiny.model()), conditioning=tiny.p)[0]
    sigmas = comfy.samplers.calculate_sigmas(tiny.model().get_model_object("model_sampling"), "normal", 4)
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: the patched model went to Guider_Basic, which gives "
                                         "it no negative prompt"):
        basic.sample(tiny.noise, tiny.latent, comfy.samplers.sampler_object("euler"), sigmas, seed=42)


def test_a_nan_cfg_on_a_patched_model_names_the_cfg(tiny):
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: the sampler's cfg is nan"):
        sample(tiny, patched(tiny, tiny.model()), cfg=math.nan)


def test_the_empty_prompt_is_encoded_from_clip(tiny):
    """clip instead of a wired empty: the same samples as CLIPTextEncode("") wired."""
    assert torch.equal(sample(tiny, patched(tiny, tiny.model(), empty=None, clip=tiny.clip)),
                       sample(tiny, patched(tiny, tiny.model(), empty=tiny.u)))


def test_an_empty_equal_to_the_negative_is_refused(tiny):
    with pytest.raises(ValueError, match="^NegativeGuidanceGuider: input 'empty' is the same conditioning as input "
                                         "'negative'"):
        call_node("NegativeGuidanceGuider", model=tiny.model(), positive=tiny.p, negative=tiny.n, empty=tiny.n,
                  cfg=7.0, **MAIN)


def test_a_wired_empty_without_clip_is_flagged_in_the_readout(tiny):
    import nodes

    output = nodes.NODE_CLASS_MAPPINGS["NegativeGuidanceCFG"].execute(model=tiny.model(), empty=tiny.u, **MAIN)
    assert "empty is unchecked: connect clip" in output.ui.as_dict()["text"][0]


def test_a_window_that_holds_no_step_is_reported(tiny, caplog):
    with caplog.at_level(logging.WARNING):
        sample(tiny, patched(tiny, tiny.model(), neg_start=0.26, neg_end=0.49))  # int(1.04) = int(1.96) = 1
    assert "NegativeGuidanceCFG: the window" in caplog.text
    assert "of the negative holds no step of this 4-step run, so it is never applied" in caplog.text


def graph_with(node_type: str, **inputs):
    """The tiny graph: one node of ``node_type`` with ``inputs`` wired where it matters, through a KSampler."""
    g, loader, vae, c = graphs.tiny_graph({"p": "a cat", "n": "dog"})
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    if node_type == "AttentionCapture":
        settings = dict(positive_text="a cat", negative_text="dog", positive_words="", negative_words="",
                        special_tokens=False, max_mb=50.0, over_cap="downsample") | inputs
        node = g.node("AttentionCapture", model=loader, clip=g.out(loader, 1), **settings)
        samples = graphs.ksampler(g, node, g.out(node, 2), g.out(node, 3), latent, steps=2)
        g.node("AttentionRt", capture=g.out(node, 1), samples=samples, score="frobenius", gate_fraction=0.5,
               related="", filename_prefix="x/rt")
    elif node_type == "AttentionRt":
        node = g.node("AttentionCapture", model=loader, clip=g.out(loader, 1), positive_text="a cat",
                      negative_text="dog", positive_words="", negative_words="", special_tokens=False, max_mb=50.0,
                      over_cap="downsample")
        samples = graphs.ksampler(g, node, g.out(node, 2), g.out(node, 3), latent, steps=2)
        g.node("AttentionRt", capture=g.out(node, 1), samples=samples, **dict(
            score="frobenius", gate_fraction=0.5, related="", filename_prefix="x/rt") | inputs)
    else:
        settings = MAIN | inputs
        patched_model = g.node("NegativeGuidanceCFG", model=loader, clip=g.out(loader, 1), **settings)
        graphs.save_latent(g, graphs.ksampler(g, patched_model, c["p"], c["n"], latent, steps=2), "x/latent")
    return g.prompt


@pytest.mark.parametrize("node, change, message", [
    ("NegativeGuidanceCFG", dict(mode="eq9"), "input 'mode' is 'eq9'; choose one of independent, standard"),
    ("NegativeGuidanceCFG", dict(window_unit="sigma"), "input 'window_unit' is 'sigma'; choose one of steps, "
                                                       "percent"),
    ("NegativeGuidanceCFG", dict(neg_schedule="square"), "input 'neg_schedule' is 'square'"),
    ("NegativeGuidanceCFG", dict(neg_scale=math.nan), "input 'neg_scale' is nan; give a number from -100 to 100"),
    ("AttentionCapture", dict(over_cap="bogus"), "input 'over_cap' is 'bogus'; choose one of downsample, error"),
    ("AttentionCapture", dict(max_mb=math.nan), "input 'max_mb' is nan"),
    ("AttentionRt", dict(score="l1"), "input 'score' is 'l1'; choose one of frobenius, mean_square"),
    ("AttentionRt", dict(gate_fraction=math.nan), "input 'gate_fraction' is nan"),
    ("AttentionRt", dict(filename_prefix="rt\0x"), "input 'filename_prefix' contains a NUL byte"),
    ("AttentionRt", dict(filename_prefix="x" * 300), "input 'filename_prefix' has a name of 300 bytes"),
])
def test_bad_widget_values_sent_over_the_api_are_refused_before_anything_runs(run_graph, node, change, message):
    with pytest.raises(ValueError, match="invalid prompt") as error:
        run_graph(graph_with(node, **change))
    assert f"{node}: {message}" in str(error.value)


def test_twenty_terms_plan_in_closed_form(tiny):
    """The planner's reach over every window state is computed in closed form, not over the 3²⁰ states of 20
    windowed and ramped terms (tests/unit/test_guidance_math.py checks it against brute force)."""
    terms = None
    for i in range(20):
        terms = call_node("NegativeTerm", conditioning=tiny.n, weight=1.0 + i, start=0.05 * i, end=1.0,
                          window_unit="steps", schedule="linear" if i % 2 else "constant", terms=terms)[0]
    call_node("NegativeGuidanceCFG", model=tiny.model(), empty=tiny.u, terms=terms, **MAIN)  # 3²⁰ would not return
