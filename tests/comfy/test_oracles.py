"""ComfyUI is the oracle: our nodes against core graphs, run through the real PromptExecutor on tiny models.

Equal seeds; the final latents' max |difference| / max |oracle| must be ≤ 1e-5, and bit-identical where the
arithmetic is the same as ComfyUI's.
"""

import graphs
import pytest
import torch

TEXTS = {"p": "a photo of a cat", "n": "blurry, dog", "u": ""}
RTOL = 1e-5


def relative_error(ours, oracle):
    return ((ours - oracle).abs().max() / oracle.abs().max()).item()


def patch(g, model, c, **inputs):
    settings = dict(mode="independent", neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                    neg_schedule="constant") | inputs
    return g.node("NegativeGuidanceCFG", model=model, empty=c["u"], **settings)


def guider(g, model, c, **inputs):
    settings = dict(mode="independent", cfg=7.0, neg_scale=3.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                    neg_schedule="constant") | inputs
    return g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], empty=c["u"], **settings)


def compare(run_graph, g, **samples):
    """Save each named LATENT link, run the graph once, return the latents by name."""
    for name, link in samples.items():
        graphs.save_latent(g, link, name)
    return run_graph(g.prompt)[1]


def start(texts=TEXTS):
    g, model, _, c = graphs.tiny_graph(texts)
    return g, model, c, g.node("EmptyLatentImage", width=64, height=64, batch_size=2)


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m"])
def test_standard_mode_is_ksampler_with_the_same_negative(run_graph, sampler):
    g, model, c, latent = start()
    ours = graphs.ksampler(g, patch(g, model, c, mode="standard"), c["p"], c["n"], latent, sampler=sampler)
    oracle = graphs.ksampler(g, model, c["p"], c["n"], latent, sampler=sampler)
    latents = compare(run_graph, g, ours=ours, oracle=oracle)
    assert torch.equal(latents["ours"], latents["oracle"])


def test_standard_guider_is_cfg_guider_with_the_same_negative(run_graph):
    g, model, c, latent = start()
    ours = graphs.custom_sample(g, model, guider(g, model, c, mode="standard"), latent)
    oracle_guider = g.node("CFGGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0)
    oracle = graphs.custom_sample(g, model, oracle_guider, latent)
    latents = compare(run_graph, g, ours=ours, oracle=oracle)
    assert torch.equal(latents["ours"], latents["oracle"])


@pytest.mark.parametrize("cfg, neg_scale", [(7.0, 3.0), (5.0, 8.0), (1.0, 2.0)])
def test_eq8_is_dual_cfg_guider_with_empty_cond2(run_graph, cfg, neg_scale):
    g, model, c, latent = start()
    ours = graphs.custom_sample(g, model, guider(g, model, c, cfg=cfg, neg_scale=neg_scale), latent)
    dual = g.node("DualCFGGuider", model=model, cond1=c["p"], cond2=c["u"], negative=c["n"], cfg_conds=cfg,
                  cfg_cond2_negative=neg_scale + 1.0, style="regular")
    oracle = graphs.custom_sample(g, model, dual, latent)
    latents = compare(run_graph, g, ours=ours, oracle=oracle)
    assert relative_error(latents["ours"], latents["oracle"]) <= RTOL


@pytest.mark.parametrize("sampler, a, cfg", [(sampler, a, 7.0) for sampler in ("euler", "heun", "dpmpp_2m")
                                             for a in (0.2, 0.5)] + [("euler", 0.5, 0.0)])
def test_percent_gated_negative_is_the_hand_wired_back_fill(run_graph, sampler, a, cfg):
    """Our gate in percent units = ConditioningSetTimestepRange(n, a, 1) + ConditioningSetTimestepRange(u, 0, a); at
    cfg 0 too, where the steps before the gate evaluate u alone."""
    g, model, c, latent = start()
    gated = patch(g, model, c, mode="standard", neg_start=a, window_unit="percent")
    ours = graphs.ksampler(g, gated, c["p"], c["n"], latent, sampler=sampler, steps=8, cfg=cfg)
    late_n = g.node("ConditioningSetTimestepRange", conditioning=c["n"], start=a, end=1.0)
    early_u = g.node("ConditioningSetTimestepRange", conditioning=c["u"], start=0.0, end=a)
    back_fill = g.node("ConditioningCombine", conditioning_1=late_n, conditioning_2=early_u)
    oracle = graphs.ksampler(g, model, c["p"], back_fill, latent, sampler=sampler, steps=8, cfg=cfg)
    latents = compare(run_graph, g, ours=ours, oracle=oracle)
    if cfg == 0.0:  # ComfyUI evaluates u in a batch with p (weighted 0); ours evaluates u alone: other float order
        assert relative_error(latents["ours"], latents["oracle"]) <= RTOL
    else:
        assert torch.equal(latents["ours"], latents["oracle"])


def test_neg_scale_zero_is_cfg_guider_against_empty(run_graph):
    g, model, c, latent = start()
    ours = graphs.custom_sample(g, model, guider(g, model, c, neg_scale=0.0), latent)
    oracle_guider = g.node("CFGGuider", model=model, positive=c["p"], negative=c["u"], cfg=7.0)
    oracle = graphs.custom_sample(g, model, oracle_guider, latent)
    latents = compare(run_graph, g, ours=ours, oracle=oracle)
    assert torch.equal(latents["ours"], latents["oracle"])


@pytest.mark.parametrize("window", [dict(), dict(neg_start=0.25, neg_schedule="linear"),
                                    dict(neg_start=0.3, neg_end=0.8, window_unit="percent")])
def test_guider_form_equals_patch_form(run_graph, window):
    g, model, c, latent = start()
    by_guider = graphs.custom_sample(g, model, guider(g, model, c, **window), latent)
    patched = patch(g, model, c, **window)
    by_patch = graphs.custom_sample(
        g, model, g.node("CFGGuider", model=patched, positive=c["p"], negative=c["n"], cfg=7.0), latent
    )
    by_ksampler = graphs.ksampler(g, patched, c["p"], c["n"], latent)
    latents = compare(run_graph, g, guider=by_guider, patch=by_patch, ksampler=by_ksampler)
    assert torch.equal(latents["guider"], latents["patch"])
    assert relative_error(latents["ksampler"], latents["guider"]) <= RTOL


def test_negative_terms_are_summed_like_one_eq8_term(run_graph):
    """Two NegativeTerms of weight w/2 on n are one negative of scale w: terms add, they do not average."""
    g, model, c, latent = start()
    half = g.node("NegativeTerm", conditioning=c["n"], weight=1.5, start=0.0, end=1.0, window_unit="steps",
                  schedule="constant")
    both = g.node("NegativeTerm", conditioning=c["n"], weight=1.5, start=0.0, end=1.0, window_unit="steps",
                  schedule="constant", terms=half)
    split = graphs.custom_sample(g, model, guider(g, model, c, neg_scale=0.0, terms=both), latent)
    whole = graphs.custom_sample(g, model, guider(g, model, c, neg_scale=3.0), latent)
    latents = compare(run_graph, g, split=split, whole=whole)
    assert relative_error(latents["split"], latents["whole"]) <= RTOL


def test_same_prompt_twice_gives_identical_latents(run_graph):
    g, model, c, latent = start()
    out = graphs.ksampler(g, patch(g, model, c, neg_start=0.25), c["p"], c["n"], latent)
    graphs.save_latent(g, out, "run")
    first = run_graph(g.prompt)[1]["run"]
    second = run_graph(g.prompt)[1]["run"]
    assert torch.equal(first, second)


def cfg_override(g, model, cfg, start=0.0, end=1.0):
    import nodes

    if "CFGOverride" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this ComfyUI has no CFGOverride (v0.33 on)")
    return g.node("CFGOverride", model=model, cfg=cfg, start_percent=start, end_percent=end)


def test_cfg_override_sets_s_plus_and_keeps_neg_scale_in_independent_mode(run_graph):
    """CFGOverride's cfg is s⁺; neg_scale stays s⁻: an override to 3 over the whole run of the patch at cfg 7 is the
    patch at cfg 3 (it gave s⁻ = 4·(3 − 1)/(7 − 1), eq. 8 folded into CFG's slots at the run's cfg)."""
    g, model, c, latent = start()
    overridden = cfg_override(g, patch(g, model, c, neg_scale=4.0), 3.0)
    ours = graphs.ksampler(g, overridden, c["p"], c["n"], latent, cfg=7.0, steps=6)
    oracle = graphs.ksampler(g, patch(g, model, c, neg_scale=4.0), c["p"], c["n"], latent, cfg=3.0, steps=6)
    latents = compare(run_graph, g, ours=ours, oracle=oracle)
    assert torch.equal(latents["ours"], latents["oracle"])


def test_cfg_override_on_part_of_the_run_is_core_cfg_override_in_standard_mode(run_graph):
    """Standard mode is eq. 9 at every cfg: inside and outside a partial override window it equals CFGOverride on
    the plain KSampler, bit for bit."""
    g, model, c, latent = start()
    ours = graphs.ksampler(g, cfg_override(g, patch(g, model, c, mode="standard"), 3.0, 0.4, 0.8), c["p"], c["n"],
                           latent, cfg=7.0, steps=8)
    oracle = graphs.ksampler(g, cfg_override(g, model, 3.0, 0.4, 0.8), c["p"], c["n"], latent, cfg=7.0, steps=8)
    latents = compare(run_graph, g, ours=ours, oracle=oracle)
    assert torch.equal(latents["ours"], latents["oracle"])


def test_a_negative_with_its_own_timestep_range_is_what_the_core_samplers_make_of_it(run_graph):
    """ConditioningSetTimestepRange on the sampler's negative, without a back-fill: outside its range ComfyUI
    evaluates none of its entries and takes n = 0. Standard mode = KSampler with that negative, bit for bit; eq. 8 =
    DualCFGGuider(p, u, n, s⁺, s⁻ + 1) with it, 1e-5."""
    g, model, c, latent = start()
    ranged = g.node("ConditioningSetTimestepRange", conditioning=c["n"], start=0.3, end=1.0)
    standard = graphs.ksampler(g, patch(g, model, c, mode="standard"), c["p"], ranged, latent, steps=6)
    ksampler = graphs.ksampler(g, model, c["p"], ranged, latent, steps=6)
    eq8 = graphs.custom_sample(g, model, g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=ranged,
                                                empty=c["u"], mode="independent", cfg=7.0, neg_scale=3.0,
                                                neg_start=0.0, neg_end=1.0, window_unit="steps",
                                                neg_schedule="constant"), latent)
    dual = graphs.custom_sample(g, model, g.node("DualCFGGuider", model=model, cond1=c["p"], cond2=c["u"],
                                                 negative=ranged, cfg_conds=7.0, cfg_cond2_negative=4.0,
                                                 style="regular"), latent)
    latents = compare(run_graph, g, standard=standard, ksampler=ksampler, eq8=eq8, dual=dual)
    assert torch.equal(latents["standard"], latents["ksampler"])
    assert relative_error(latents["eq8"], latents["dual"]) <= RTOL


def test_a_timestep_range_on_a_conditioning_the_pack_weighs_itself_is_refused(comfy):
    """On u or a term, a range means a prediction of 0 outside it (read as u or as the term's prediction by eq. 8) or
    nothing at all (an attention-space negative): refused when the node runs, pointing to the term's own window."""
    import tiny_families
    from comfy_helpers import call_node

    clip = tiny_families.clip("sd1")
    text = tiny_families.encode(clip, "blurry")
    ranged = call_node("ConditioningSetTimestepRange", conditioning=text, start=0.2, end=0.7)[0]
    empty = call_node("ConditioningSetTimestepRange", conditioning=tiny_families.encode(clip, ""), start=0.2,
                      end=1.0)[0]
    window = dict(start=0.0, end=1.0, window_unit="steps", schedule="constant")
    for node, inputs in (("NegativeTerm", dict(conditioning=ranged, weight=1.0, **window)),
                         ("AttentionNegativeTerm", dict(conditioning=ranged, scale=2.0, tau=2.5, alpha=0.25,
                                                        **window))):
        with pytest.raises(ValueError, match=rf"^{node}: input 'conditioning' is set to the timestep range 0.2–0.7 "
                                             r"\(ConditioningSetTimestepRange\).*window_unit percent"):
            call_node(node, **inputs)
    with pytest.raises(ValueError, match=r"^NegativeGuidanceCFG: input 'empty' is set to the timestep range 0.2–1"):
        call_node("NegativeGuidanceCFG", model=tiny_families.model("sd1"), mode="independent", neg_scale=2.0,
                  neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant", empty=empty)
