"""Guidance on every model family: the SD1 oracles of test_oracles.py and test_model_calls.py on tiny models of each
family, built from ComfyUI's own config, model, tokenizer and text encoder classes (tests/support/tiny_families.py),
with CONDITIONING from CLIPTextEncode. Euler, "normal" schedule, 6 steps, cfg s⁺ = 5, s⁻ = 3, batch 2, seed 42.

Eq. 8 against DualCFGGuider: max |ours − oracle| / max |oracle| of the final latents, measured on CPU (torch 2.14)
with the weights and the compute in the model's dtype (``set_inference_dtype(dtype, None)``). "1 step": one model
call; "6": the test's run (seed 42); "6, 4 seeds": the largest over noise seeds 42, 1, 2, 3.

| family        | fp32, 6 | bf16, 1 step | bf16, 6 | bf16, 6, 4 seeds | fp16, 1 step | fp16, 6 | fp16, 6, 4 seeds |
|---------------|---------|--------------|---------|------------------|--------------|---------|------------------|
| sd1           | 4.8e-7  | 1.6e-7       | 3.2e-7  | 4.4e-7           | 2.2e-7       | 3.2e-7  | 2.9e-4           |
| sdxl          | 5.8e-7  | 1.6e-7       | 5.0e-7  | 5.0e-7           | 1.6e-7       | 3.3e-7  | 9.0e-5           |
| sd3 (3.5 M)   | 8.2e-7  | 5.1e-8       | 4.6e-7  | 9.9e-3           | 5.1e-8       | 5.2e-7  | 9.0e-4           |
| flux (dev)    | 9.2e-7  | 1.1e-7       | 6.8e-7  | 6.8e-7           | 1.1e-7       | 1.3e-3  | 1.8e-3           |
| chroma        | 9.1e-7  | 1.5e-7       | 3.6e-7  | 5.3e-7           | 7.2e-8       | 2.7e-7  | 2.9e-3           |
| wan21         | 6.5e-7  | 0            | 1.7e-7  | 3.4e-7           | 1.5e-8       | 9.9e-5  | 2.2e-4           |
| wan21_i2v     | 9.5e-7  | 3.2e-8       | 4.1e-7  | 4.1e-7           | 3.2e-8       | 3.8e-7  | 1.3e-4           |
| qwen_image    | 8.0e-7  | 3.5e-8       | 4.4e-7  | 5.1e-3           | 6.9e-8       | 5.1e-7  | 1.4e-3           |
| lumina2       | 9.4e-7  | 8.7e-8       | 5.0e-7  | 1.2e-2           | 8.7e-8       | 4.7e-7  | 2.8e-3           |
| auraflow      | 7.7e-7  | 9.8e-8       | 4.1e-7  | 4.5e-7           | 6.2e-9       | 4.6e-7  | 6.5e-4           |
| hidream       | 6.7e-7  | 9.7e-8       | 9.3e-7  | 9.3e-7           | 9.7e-8       | 6.1e-4  | 8.3e-4           |
| hunyuan_video | 1.6e-6  | 8.6e-8       | 5.1e-7  | 7.1e-7           | 7.6e-8       | 5.8e-7  | 9.8e-7           |

One model call differs by the fp32 rounding of the combination alone (≤ 2.2e-7 in every dtype). Each later step
casts the fp32 latent to the model's dtype (comfy/model_base.py, ``xc.to(dtype)``): a last-bit difference can flip
an element to the next bf16/fp16 value, and guidance (|1 − s⁺ + s⁻| + s⁺ + s⁻ = 9) amplifies it over the steps.
Hence the tolerances: 1e-5 in fp32; in bf16 and fp16, 1e-6 after one step and 5e-2 after six (the worst seed
reached 1.2e-2, above one bf16 step of 2⁻⁷). bf16 weights manual-cast to fp32 compute (ComfyUI's choice on a CPU)
stay ≤ 1.0e-6 after six steps (sd3), so 1e-5. Eq. 8 is tested on every family in fp32 and on DTYPE_FAMILIES in the
other three dtypes.

Two NegativeTerms of weight w/2 against one of weight w (fp32): ≤ 7.3e-7 at the first call, up to 1.6e-6 after six
steps (x̂ = … − (w/2)(n − u) − (w/2)(n − u) rounds differently and compounds), so 1e-6 and 1e-5. Krea 2's tiny
single-stream model, whose p, n and u lie farther apart than x̂'s size, rounds them to 1.05e-6 and 1.33e-5, and tiny
Z-Image to 1.3e-6 at the first call: twice the tolerances (HALVES_SLACK); their eq. 8 stays within 1e-5.

A percent gate is bit-identical to its ConditioningSetTimestepRange back-fill except where a step's σ equals the
gate's σ exactly: there the back-fill averages n and u (both ranges include the boundary) and the gate takes n. SD1,
6 steps, start 0.4: σ₂ = percent_to_sigma(0.4) = 2.27973, and x0 differs by 0.081 at step 2. The test uses 0.45.
"""

import types

import graphs
import pytest
import torch
from comfy_helpers import Recorder, call_node, patched, sample

FAMILIES = ("sd1", "sd2", "sdxl", "sd3", "flux", "chroma", "chroma_radiance", "wan21", "wan21_i2v", "qwen_image",
            "lumina2", "auraflow", "hidream", "hunyuan_video", "flux_rope4", "flux2_klein", "ltxv",
            "kandinsky5", "krea2", "z_image", "hunyuan_video15")  # = tiny_families' (the list needs ComfyUI)
DTYPE_FAMILIES = ("sd1", "sd3", "flux", "wan21", "qwen_image")
TEXTS = {"p": "a photo of a cat", "n": "blurry, dog", "u": ""}
STEPS = 6
CFG, NEG_SCALE = 5.0, 3.0
RTOL = 1e-5  # fp32 after STEPS steps
HALVES_SLACK = {"krea2": 2.0, "z_image": 2.0}  # two half terms against one, where their rounding (above) is larger
FIRST_STEP_RTOL = 1e-6  # one model call, any dtype: the combination's own rounding
LOW_PRECISION_RTOL = 5e-2  # bf16 and fp16 after STEPS steps: rounding flips of the cast latent
EMPTY_LATENT = {  # the core node the family's workflows start from (64×64 pixels, batch 2)
    "EmptyLatentImage": ("sd1", "sd2", "sdxl", "auraflow"),
    "EmptySD3LatentImage": ("sd3", "flux", "chroma", "qwen_image", "lumina2", "hidream", "flux_rope4", "z_image"),
    "EmptyHunyuanLatentVideo": ("wan21", "wan21_i2v", "hunyuan_video", "kandinsky5", "krea2"),
    "EmptyChromaRadianceLatentImage": ("chroma_radiance",),
    "EmptyFlux2LatentImage": ("flux2_klein",),
    "EmptyLTXVLatentVideo": ("ltxv",),
    "EmptyHunyuanVideo15Latent": ("hunyuan_video15",),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on these tiny models a second thread only adds synchronisation (3–8× slower when
    another process holds a core)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def relative_error(ours, oracle):
    return ((ours - oracle).abs().max() / oracle.abs().max()).item()


TESTED_ELSEWHERE = {"ltxav": "its video and audio latents are nested: test_ltxav.py",
                    "flux2_dev": "flux2_klein's model with Mistral 3's text, which test_families_capture.py maps"}


def test_every_built_family_is_tested(comfy):
    import tiny_families

    assert {*tiny_families.FAMILIES, *tiny_families.UNBUILDABLE} == {*FAMILIES, *TESTED_ELSEWHERE}


def family_graph(family, dtype="fp32"):
    """A graph with the family's tiny loader, one CLIPTextEncode per text and the family's empty latent."""
    import tiny_families

    g = graphs.Graph()
    loader = g.node("NegativeGuidanceTestTinyFamily", family=family, seed=0, dtype=dtype)
    conds = {name: g.node("CLIPTextEncode", text=text, clip=g.out(loader, 1)) for name, text in TEXTS.items()}
    node = next(name for name, names in EMPTY_LATENT.items() if family in names)
    frames = {"length": 1} if node in ("EmptyHunyuanLatentVideo", "EmptyLTXVLatentVideo",
                                       "EmptyHunyuanVideo15Latent") else {}
    size = tiny_families.PIXELS
    return g, loader, conds, g.node(node, width=size, height=size, batch_size=2, **frames)


def eq8_and_dual(g, model, c, latent, steps=STEPS):
    """Eq. 8 by our guider and by DualCFGGuider(cond1=p, cond2=u, negative=n, cfg_cond2_negative=s⁻ + 1)."""
    ours = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], empty=c["u"],
                  mode="independent", cfg=CFG, neg_scale=NEG_SCALE, neg_start=0.0, neg_end=1.0,
                  window_unit="steps", neg_schedule="constant")
    dual = g.node("DualCFGGuider", model=model, cond1=c["p"], cond2=c["u"], negative=c["n"], cfg_conds=CFG,
                  cfg_cond2_negative=NEG_SCALE + 1.0, style="regular")
    return [graphs.custom_sample(g, model, guider, latent, steps=steps) for guider in (ours, dual)]


def run(run_graph, g, **samples):
    """Save each named LATENT link, run the graph once; return (history, latents by name)."""
    for name, link in samples.items():
        graphs.save_latent(g, link, name)
    return run_graph(g.prompt)


@pytest.mark.parametrize("family", FAMILIES)
def test_eq8_and_the_percent_gate_match_core_graphs(run_graph, family):
    """Eq. 8 = DualCFGGuider; a percent gate = the KSampler with a ConditioningSetTimestepRange back-fill of u; the
    family's VAE decodes the result."""
    import tiny_families

    import comfy.samplers

    a = 0.45
    sampling = tiny_families.model(family).get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(sampling, "normal", STEPS)
    boundary = sampling.percent_to_sigma(a)
    assert sigmas[STEPS - 1] < boundary < sigmas[0]  # the gate switches inside the run
    assert not torch.isclose(sigmas, torch.tensor(boundary)).any()  # see the module docstring
    g, loader, c, latent = family_graph(family)
    ours, dual = eq8_and_dual(g, loader, c, latent)
    gated = g.node("NegativeGuidanceCFG", model=loader, empty=c["u"], mode="standard", neg_scale=0.0, neg_start=a,
                   neg_end=1.0, window_unit="percent", neg_schedule="constant")
    late_n = g.node("ConditioningSetTimestepRange", conditioning=c["n"], start=a, end=1.0)
    early_u = g.node("ConditioningSetTimestepRange", conditioning=c["u"], start=0.0, end=a)
    back_fill = g.node("ConditioningCombine", conditioning_1=late_n, conditioning_2=early_u)
    gate = graphs.ksampler(g, gated, c["p"], c["n"], latent, cfg=CFG, steps=STEPS)
    oracle = graphs.ksampler(g, loader, c["p"], back_fill, latent, cfg=CFG, steps=STEPS)
    g.node("PreviewImage", images=g.node("VAEDecode", samples=gate, vae=g.out(loader, 2)))
    history, latents = run(run_graph, g, ours=ours, dual=dual, gate=gate, oracle=oracle)
    assert latents["ours"].shape == tiny_families.latent_shape(family, 2)
    assert relative_error(latents["ours"], latents["dual"]) <= RTOL
    assert torch.equal(latents["gate"], latents["oracle"])
    assert any("images" in ui for ui in history.values())


@pytest.mark.parametrize("dtype", ["bf16", "fp16", "bf16 weights, fp32 compute"])
@pytest.mark.parametrize("family", DTYPE_FAMILIES)
def test_eq8_is_dual_cfg_guider_in_low_precision(run_graph, family, dtype):
    """The same oracle with the model in bf16 or fp16: one call within fp32 rounding, six steps within 5e-2; bf16
    weights manual-cast to fp32 (ComfyUI's choice on a CPU) within the fp32 tolerance."""
    g, loader, c, latent = family_graph(family, dtype)
    first, first_dual = eq8_and_dual(g, loader, c, latent, steps=1)
    ours, dual = eq8_and_dual(g, loader, c, latent)
    latents = run(run_graph, g, first=first, first_dual=first_dual, ours=ours, dual=dual)[1]
    assert relative_error(latents["first"], latents["first_dual"]) <= FIRST_STEP_RTOL
    assert relative_error(latents["ours"], latents["dual"]) <= (RTOL if "fp32" in dtype else LOW_PRECISION_RTOL)


class CondRecorder(Recorder):
    """A Recorder that also names the conds of each model call by their cross-attention context."""

    def __init__(self, contexts):
        super().__init__()
        self.contexts = contexts  # {name: (1, tokens, width)}
        self.names = []

    def __call__(self, apply_model, args):
        context, chunks = args["c"]["c_crossattn"], len(args["cond_or_uncond"])
        rows = context.shape[0] // chunks
        self.names.append([self.name(context[i * rows]) for i in range(chunks)])
        return super().__call__(apply_model, args)

    def name(self, row):
        return next(n for n, c in self.contexts.items() if c.shape[1:] == row.shape and torch.equal(c[0], row))

    def per_step(self):
        """Each step's cond names, sorted (conds of unequal token counts come in separate calls)."""
        steps = {}
        for (sigma, _, _), names in zip(self.calls, self.names, strict=True):
            steps.setdefault(sigma, []).extend(names)
        return [sorted(names) for names in steps.values()]


def setup(name):
    """The family's tiny models; p, n, u and a fourth prompt c from its CLIP; a batch-2 latent and its noise."""
    import tiny_families

    import comfy.sample

    clip = tiny_families.clip(name)
    conds = {key: tiny_families.encode(clip, text) for key, text in (TEXTS | {"c": "green"}).items()}
    latent = tiny_families.latent(name, 2)
    return types.SimpleNamespace(name=name, model=lambda: tiny_families.model(name), latent=latent,
                                 noise=comfy.sample.prepare_noise(latent, 42),
                                 contexts={key: cond[0][0] for key, cond in conds.items()}, **conds)


@pytest.fixture(params=FAMILIES)
def family(request, comfy):
    return setup(request.param)


def recorded(t):
    recorder = CondRecorder(t.contexts)
    model = t.model()
    model.set_model_unet_function_wrapper(recorder)
    return model, recorder


def test_model_evaluations_per_step_are_as_planned(family):
    """Eq. 8: p, n, u; standard mode: p, n; eq. 8 gated in steps: p, u until step int(start·N), then p, n, u."""
    start = 0.4  # int(0.4 · 6) = 2
    expected = {
        "eq8": (dict(), [["n", "p", "u"]] * STEPS),
        "standard": (dict(mode="standard"), [["n", "p"]] * STEPS),
        "gated": (dict(neg_start=start), [["p", "u"]] * 2 + [["n", "p", "u"]] * (STEPS - 2)),
    }
    for case, (inputs, per_step) in expected.items():
        model, recorder = recorded(family)
        sample(family, patched(family, model, **inputs), steps=STEPS, cfg=CFG)
        assert recorder.per_step() == per_step, case


def test_at_cfg_1_flux_evaluates_only_what_the_plan_needs(comfy):
    """At s⁺ = 1: standard mode needs p alone (s⁻ = s⁺ − 1 = 0); eq. 8 gated in steps needs p alone until its gate
    (c_u = 1 − s⁺ = 0), then p, n, u."""
    t = setup("flux")
    expected = {
        "standard": (dict(mode="standard"), [["p"]] * STEPS),
        "gated": (dict(neg_start=0.4), [["p"]] * 2 + [["n", "p", "u"]] * (STEPS - 2)),
    }
    for case, (inputs, per_step) in expected.items():
        model, recorder = recorded(t)
        sample(t, patched(t, model, **inputs), steps=STEPS, cfg=1.0)
        assert recorder.per_step() == per_step, case


def test_two_half_terms_are_one_whole_term_and_a_zero_term_is_never_evaluated(family):
    """Terms add: NegativeTerm(n, w/2) twice = NegativeTerm(n, w) (chained with a NegativeTerm(c, 0), which costs no
    evaluation)."""
    import comfy.samplers

    def term(conditioning, weight, terms=None):
        return call_node("NegativeTerm", conditioning=conditioning, weight=weight, start=0.0, end=1.0,
                         window_unit="steps", schedule="constant", terms=terms)[0]

    def guided(model, terms):
        """(final latent, first x0) of our guider with s⁻ = 0 and only ``terms`` as negatives."""
        guider = call_node("NegativeGuidanceGuider", model=model, positive=family.p, negative=family.n,
                           empty=family.u, mode="independent", cfg=CFG, neg_scale=0.0, neg_start=0.0, neg_end=1.0,
                           window_unit="steps", neg_schedule="constant", terms=terms)[0]
        sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", STEPS)
        x0 = []
        final = guider.sample(family.noise, family.latent, comfy.samplers.sampler_object("euler"), sigmas,
                              callback=lambda step, denoised, x, total: x0.append(denoised), disable_pbar=True,
                              seed=42)
        return final, x0[0]

    halves, halves_x0 = guided(family.model(), term(family.n, NEG_SCALE / 2, term(family.n, NEG_SCALE / 2)))
    model, recorder = recorded(family)
    whole, whole_x0 = guided(model, term(family.c, 0.0, term(family.n, NEG_SCALE)))
    assert recorder.per_step() == [["n", "p", "u"]] * STEPS
    slack = HALVES_SLACK.get(family.name, 1.0)
    assert relative_error(halves_x0, whole_x0) <= FIRST_STEP_RTOL * slack
    assert relative_error(halves, whole) <= RTOL * slack


def text_ids(clip, key, text):
    """The ids the family's (last) tokenizer gives ``text`` itself, without its start and end tokens."""
    tokenizer = clip.tokenizer  # one tokenizer (SD1Tokenizer and its kin), or several by attribute
    single = getattr(tokenizer, "clip_name", None) == key
    sub = getattr(tokenizer, tokenizer.clip if single else f"clip_{key}" if key in ("l", "g") else key)
    ids = sub.tokenizer(text)["input_ids"]
    return ids[sub.tokens_start:len(ids) - 1 if sub.tokenizer_adds_end_token else None]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_context_holds_the_tokens_of_the_documented_layout(comfy, family):
    """tiny_families.context_tokens gives one token per position of CLIPTextEncode's context, the prompt's own
    tokens among them in one run, for short, empty and multi-chunk prompts."""
    import tiny_families

    clip = tiny_families.clip(family)
    for text in ("a photo of a cat", "", ", ".join(["a red cat on a blue chair"] * 12)):
        ids = tiny_families.context_tokens(family, clip.tokenize(text))
        assert len(ids) == tiny_families.encode(clip, text)[0][0].shape[1], text
    ids = tiny_families.context_tokens(family, clip.tokenize("a photo of a cat"))
    own = text_ids(clip, tiny_families.CONTEXT_TOKENS[family][-1], "a photo of a cat")
    assert any(ids[i:i + len(own)] == own for i in range(len(ids))), (ids, own)


def test_the_empty_prompt_the_node_encodes_takes_the_positives_flux_guidance(run_graph):
    """Flux dev embeds a guidance value (FluxGuidance) in each conditioning: u, encoded by the node from clip, runs
    at the positive's value, as DualCFGGuider does with a FluxGuidance'd empty prompt."""
    g, loader, c, latent = family_graph("flux")
    guided = {k: g.node("FluxGuidance", conditioning=c[k], guidance=5.0) for k in ("p", "n", "u")}
    ours = g.node("NegativeGuidanceGuider", model=loader, positive=guided["p"], negative=guided["n"],
                  clip=g.out(loader, 1), mode="independent", cfg=CFG, neg_scale=NEG_SCALE, neg_start=0.0,
                  neg_end=1.0, window_unit="steps", neg_schedule="constant")
    dual = g.node("DualCFGGuider", model=loader, cond1=guided["p"], cond2=guided["u"], negative=guided["n"],
                  cfg_conds=CFG, cfg_cond2_negative=NEG_SCALE + 1.0, style="regular")
    samples = {name: graphs.custom_sample(g, loader, guider, latent) for name, guider in (("ours", ours),
                                                                                          ("dual", dual))}
    _, latents = run(run_graph, g, **samples)
    assert relative_error(latents["ours"], latents["dual"]) <= RTOL
