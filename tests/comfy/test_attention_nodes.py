"""AttentionCapture → sampler → AttentionRt on the tiny model: in graphs and node by node, with every message a user
can meet."""

import csv
import json
from pathlib import Path

import graphs
import pytest
import torch
from comfy_helpers import call_node, patched

TEXT = "professional office woman"
CAPTURE = dict(positive_words="", negative_words="", special_tokens=False, max_mb=64.0, over_cap="error")
ANALYSIS = dict(score="frobenius", gate_fraction=0.5, related="", filename_prefix="test/rt")


def capture_graph(g, model, positive=TEXT, negative="glasses", **inputs):
    node = g.node("AttentionCapture", model=model, clip=g.out(model, 1), positive_text=positive,
                  negative_text=negative, **CAPTURE | inputs)
    return node, g.out(node, 1), g.out(node, 2), g.out(node, 3)


def test_the_analysis_runs_after_the_sampler_in_one_graph_with_each_prompt_typed_once(run_graph):
    g, loader, _, _ = graphs.tiny_graph({})
    model, capture, p, n = capture_graph(g, loader)
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    samples = graphs.ksampler(g, model, p, n, latent, steps=6)
    rt = g.node("AttentionRt", capture=capture, samples=samples, **ANALYSIS)
    history, _ = run_graph(g.prompt)
    assert history[rt[0]]["text"][0].startswith("suggested neg_start")
    curves = history[rt[0]]["negative_guidance_rt"][0]  # what web/js draws in the node
    assert curves["words"] == ["glasses"] and len(curves["r"][0]) == 6 and curves["gate_step"] in range(6)


def test_capture_with_sampler_custom_advanced_and_our_guider(run_graph):
    g, loader, _, _ = graphs.tiny_graph({})
    model, capture, p, n = capture_graph(g, loader)
    guider = g.node("NegativeGuidanceGuider", model=model, positive=p, negative=n, clip=g.out(loader, 1),
                    mode="independent", cfg=7.0, neg_scale=3.0, neg_start=0.5, neg_end=1.0, window_unit="steps",
                    neg_schedule="constant")
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    samples = graphs.custom_sample(g, model, guider, latent, steps=6)
    rt = g.node("AttentionRt", capture=capture, samples=samples, **ANALYSIS)
    history, _ = run_graph(g.prompt)
    assert "glasses→" in history[rt[0]]["text"][0]


def test_a_prompt_that_differs_from_the_captured_text_is_refused_before_sampling(run_graph):
    """The capture's words must be the sampled prompt's: a CLIPTextEncode of another text is an error."""
    g, loader, _, c = graphs.tiny_graph({"other": "a square with a dot"})
    model, capture, p, n = capture_graph(g, loader, positive="a circle with a frame")
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    samples = graphs.ksampler(g, model, c["other"], n, latent, steps=2)
    g.node("AttentionRt", capture=capture, samples=samples, **ANALYSIS)
    with pytest.raises(RuntimeError, match="AttentionCapture: the sampler's positive prompt is not positive_text"):
        run_graph(g.prompt)


def captured_run(tiny, positive=TEXT, negative="glasses", cfg=7.0, model=None, clip=None, noise=None, latent=None,
                 **inputs):
    """A 6-step KSampler run through the capture; returns (handle, samples)."""
    import comfy.sample

    captured, handle, p, n = call_node("AttentionCapture", model=model or tiny.model(), clip=clip or tiny.clip,
                                       positive_text=positive, negative_text=negative, **CAPTURE | inputs)
    samples = comfy.sample.sample(captured, tiny.noise if noise is None else noise, 6, cfg, "euler", "normal", p, n,
                                  tiny.latent if latent is None else latent, seed=42, disable_pbar=True)
    return handle, samples


def analyse(handle, samples, **inputs):
    """AttentionRt's outputs, with the JSON parsed."""
    data, step, start, plot, heatmaps, effects, overlays = call_node(
        "AttentionRt", capture=handle, samples={"samples": samples}, **ANALYSIS | inputs)
    return json.loads(data), step, start, dict(plot=plot, heatmaps=heatmaps, effects=effects, overlays=overlays)


def test_a_negative_equal_to_the_positive_gives_r_one_with_itself(tiny):
    data, step, start, _ = analyse(*captured_run(tiny, TEXT, TEXT))
    assert data["steps"] == [0, 1, 2, 3, 4, 5]
    for word, curve in data["curves"].items():
        assert curve["related"] == word and curve["related_by"] == "the same word is in the positive"
        assert curve["r"] == pytest.approx([1.0] * 6)
        assert all(r == pytest.approx([1.0] * 6) for r in curve["per_image"])
    assert (step, start) == (0, 0.0)


def test_every_image_of_the_batch_gets_its_own_curve_equal_to_its_run_alone(tiny):
    handle, samples = captured_run(tiny)
    data, _, _, images = analyse(handle, samples, related="glasses=woman", image=torch.rand(2, 64, 64, 3))
    per_image = data["curves"]["glasses"]["per_image"]
    assert len(per_image) == 2 and data["curves"]["glasses"]["r"] == pytest.approx(
        [(a + b) / 2 for a, b in zip(*per_image, strict=True)])
    for b in range(2):
        alone, alone_samples = captured_run(tiny, noise=tiny.noise[b:b + 1], latent=tiny.latent[b:b + 1])
        own = analyse(alone, alone_samples, related="glasses=woman")[0]["curves"]["glasses"]["r"]
        assert own == pytest.approx(per_image[b], rel=1e-5)
    assert images["overlays"].shape == (2, 64, 64, 3)  # one per image × negative word


def test_weighted_syntax_multi_piece_words_and_special_tokens(tiny):
    handle, samples = captured_run(tiny, "a (zxqvbn:1.3) office", "(glasses:0.8), zxqvbn", special_tokens=True)
    assert handle.words["positive"] == ["a", "zxqvbn", "office", "<bos>", "<eos>", "<pad>"]
    assert handle.words["negative"] == ["glasses", "zxqvbn", "<bos>", "<eos>", "<pad>"]
    zxqvbn = next(p for p in handle.recorder.prompts["positive"].words if p.text == "zxqvbn")
    assert len(zxqvbn.columns) > 1 and zxqvbn.columns[0] == 2
    data, *_ = analyse(handle, samples, related="glasses=office", image=torch.rand(2, 64, 64, 3))
    assert data["curves"]["glasses"]["related"] == "office" and data["curves"]["glasses"]["related_by"] == "given"


def test_a_word_split_across_a_chunk_boundary_is_found(tiny):
    """ComfyUI breaks 'a '×74 + 'photorealistic circle' mid-word: the word's pieces in both chunks are its columns."""
    handle, samples = captured_run(tiny, "a " * 74 + "photorealistic circle", "dot")
    assert handle.words["positive"] == ["a", "photorealistic", "circle"]
    word = next(w for w in handle.recorder.prompts["positive"].words if w.text == "photorealistic")
    assert min(word.columns) < 77 < max(word.columns)
    assert analyse(handle, samples)[0]["curves"]["dot"]["related"] in handle.words["positive"]


def test_a_1500_word_prompt_works(tiny):
    vocabulary = ("red", "green", "blue", "cat", "dog", "tree", "house")
    words = " ".join(vocabulary[i % 7] for i in range(1500))
    handle, samples = captured_run(tiny, words, "dot", positive_words="tree")
    assert handle.words["positive"] == ["tree"]
    assert len(handle.recorder.prompts["positive"].words[0].columns) == 214  # every occurrence, in 21 chunks
    assert analyse(handle, samples)[0]["curves"]["dot"]["related"] == "tree"


def test_a_missing_word_lists_the_prompt_words(tiny):
    with pytest.raises(ValueError, match="^AttentionCapture: input 'negative_words': 'hat' is not in the prompt; "
                                         "its words are: glasses, blurry$"):
        captured_run(tiny, TEXT, "glasses, blurry", negative_words="hat")


@pytest.fixture
def embeddings(tmp_path):
    """An embeddings folder with 'style' (2 vectors of the tiny CLIP's width 64)."""
    import safetensors.torch

    safetensors.torch.save_file({"clip_l": torch.randn(2, 64, generator=torch.Generator().manual_seed(3))},
                                str(tmp_path / "style.safetensors"))
    return str(tmp_path)


def test_prompts_with_embeddings_work_and_the_embedding_is_a_word(tiny, embeddings):
    import tiny as tiny_models

    clip = tiny_models.tiny_clip(embedding_directory=embeddings)
    handle, samples = captured_run(tiny, "a office embedding:style woman", "glasses", clip=clip)
    assert handle.words["positive"] == ["a", "office", "embedding:style", "woman"]
    style = next(w for w in handle.recorder.prompts["positive"].words if w.text == "embedding:style")
    assert style.columns == (3, 4)
    handle, _ = captured_run(tiny, "a office embedding:style woman", "glasses", clip=clip, positive_words="office")
    assert handle.words["positive"] == ["office"]
    handle, _ = captured_run(tiny, "a office embedding:style woman", "glasses", clip=clip, positive_words="style")
    assert handle.words["positive"] == ["embedding:style"]


def test_a_missing_embedding_is_dropped_as_comfyui_drops_it(tiny, embeddings):
    import tiny as tiny_models

    clip = tiny_models.tiny_clip(embedding_directory=embeddings)
    handle, _ = captured_run(tiny, TEXT, "dot embedding:missing", clip=clip)
    assert handle.words["negative"] == ["dot"]


@pytest.mark.parametrize("positive, negative, message", [
    ("", "", "inputs 'positive_text' and 'negative_text' are both empty"),
])
def test_capture_input_errors(tiny, positive, negative, message):
    with pytest.raises(ValueError, match=f"^AttentionCapture: {message}"):
        captured_run(tiny, positive, negative)


def test_a_second_capture_on_the_same_chain_is_refused_before_sampling(tiny):
    """Two chained captures left one store empty, reported as "the negative prompt was never evaluated"."""
    first = call_node("AttentionCapture", model=tiny.model(), clip=tiny.clip, positive_text=TEXT,
                      negative_text="glasses", **CAPTURE)[0]
    with pytest.raises(ValueError, match="^AttentionCapture: input 'model' comes from another AttentionCapture"):
        captured_run(tiny, model=first)


def test_a_capture_whose_model_never_sampled_says_so(tiny):
    _, handle, _, _ = call_node("AttentionCapture", model=tiny.model(), clip=tiny.clip, positive_text=TEXT,
                                negative_text="glasses", **CAPTURE)
    with pytest.raises(ValueError, match="^AttentionRt: the capture recorded no finished run: wire AttentionCapture's "
                                         "MODEL to the sampler"):
        analyse(handle, torch.zeros(2, 4, 8, 8))


def test_each_run_is_analysed_with_its_own_maps_while_they_are_kept(tiny):
    """A cached sampler's output finds its own run's maps; once later runs have filled max_mb, it gets a message."""
    import comfy.sample

    model, handle, p, n = call_node("AttentionCapture", model=tiny.model(), clip=tiny.clip, positive_text=TEXT,
                                    negative_text="glasses", **CAPTURE)
    run = lambda steps, scale: comfy.sample.sample(model, tiny.noise * scale, steps, 7.0, "euler", "normal", p, n,  # noqa: E731
                                                   tiny.latent, disable_pbar=True)
    first, second = run(6, 1.0), run(4, 0.5)
    assert analyse(handle, second)[0]["steps"] == [0, 1, 2, 3]
    assert analyse(handle, first)[0]["steps"] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="^AttentionRt: the maps of the run that made input 'samples' are gone"):
        analyse(handle, torch.zeros_like(first))
    handle.recorder.max_bytes = handle.recorder.finished.nbytes * 2  # room for two 6-step runs at most
    run(6, 0.25)
    assert analyse(handle, run(6, 0.125))[0]["steps"] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="the maps of the run that made input 'samples' are gone: later runs"):
        analyse(handle, first)


def test_a_negative_that_was_never_evaluated_says_why(tiny):
    with pytest.raises(ValueError, match="the sampler ran at cfg 1, where ComfyUI skips the negative prompt"):
        analyse(*captured_run(tiny, cfg=1.0))
    with pytest.raises(ValueError, match="^AttentionRt: negative_text of AttentionCapture is empty"):
        analyse(*captured_run(tiny, negative=""))
    with pytest.raises(ValueError, match="^AttentionRt: negative_text of AttentionCapture ', ; !' has no word to "
                                         "measure"):  # it was called empty
        analyse(*captured_run(tiny, negative=", ; !"))
    for settings, reason in ((dict(neg_scale=0.0), "its neg_scale is 0"),
                             (dict(neg_start=0.26, neg_end=0.3), "its window .* holds no step of this 6-step run")):
        model = patched(tiny, tiny.model(), empty=None, clip=tiny.clip, **settings)
        with pytest.raises(ValueError, match=f"NegativeGuidance switched it off at every step: {reason}"):
            analyse(*captured_run(tiny, model=model))


def test_a_split_run_past_the_negatives_timestep_range_says_so(tiny):
    """A KSamplerAdvanced-style run of steps 3–6 of 6, the negative limited to 0–0.5 by ConditioningSetTimestepRange:
    ComfyUI never evaluates it, and the message names the range and the run's steps (it blamed CFGGuider)."""
    import comfy.sample

    captured, handle, p, n = call_node("AttentionCapture", model=tiny.model(), clip=tiny.clip, positive_text=TEXT,
                                       negative_text="glasses", **CAPTURE)
    early = call_node("ConditioningSetTimestepRange", conditioning=n, start=0.0, end=0.5)[0]
    samples = comfy.sample.sample(captured, tiny.noise, 6, 7.0, "euler", "normal", p, early, tiny.latent, seed=42,
                                  disable_pbar=True, start_step=3, last_step=6)
    with pytest.raises(ValueError, match=r"^AttentionRt: the negative prompt was never evaluated in this run: "
                                         r"ConditioningSetTimestepRange limits the sampler's negative to 0–0.5 of the "
                                         r"schedule, and this run's 3 steps \(σ .* to .*\) lie outside it"):
        analyse(handle, samples)
    first_half = comfy.sample.sample(captured, tiny.noise, 6, 7.0, "euler", "normal", p, early, tiny.latent, seed=42,
                                     disable_pbar=True, start_step=0, last_step=3, force_full_denoise=False)
    assert analyse(handle, first_half)[0]["curves"]  # the part where it runs is measured


def test_exports_are_numbered_per_run_whatever_dots_the_prefix_has(tiny):
    import folder_paths

    handle, samples = captured_run(tiny)
    folder = Path(folder_paths.get_output_directory())
    for prefix, where, name in (("exports/rt_cfg7.5", "exports", "rt_cfg7.5"), ("..", "", ".."),
                                (r"..\x", "", r"..\x")):
        data = [analyse(handle, samples, filename_prefix=prefix)[0] for _ in range(2)]
        for counter in (1, 2):
            base = folder / where / f"{name}_{counter:05}_"
            for suffix in (".json", ".csv", ".safetensors"):
                assert Path(f"{base}{suffix}").exists(), f"{base}{suffix}"
        assert json.loads(Path(f"{base}.json").read_text(encoding="utf-8")) == data[-1]


def test_exports_hold_every_image_and_the_maps_per_layer(tiny):
    import safetensors.torch

    import folder_paths

    handle, samples = captured_run(tiny, negative="glasses, blurry")
    data, *_ = analyse(handle, samples, filename_prefix="per_image/rt")
    base = sorted((Path(folder_paths.get_output_directory()) / "per_image").glob("rt_*_.json"))[-1]
    with open(str(base)[:-5] + ".csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 6  # 2 words × (mean + 2 images) × 6 steps
    assert {r["image"] for r in rows} == {"mean", "0", "1"}
    maps = safetensors.torch.load_file(str(base)[:-5] + ".safetensors")
    assert maps["negative/middle.0.0"].shape == (6, 2, 2, 4, 4)  # steps, images, words, the tiny UNet's middle


def test_exports_cannot_escape_the_output_folder(tiny):
    with pytest.raises(ValueError, match="^AttentionRt: input 'filename_prefix': .*Saving image outside the output"):
        analyse(*captured_run(tiny), filename_prefix="../../escape")


def test_effect_maps_with_negative_guidance(tiny):
    """Captured under a gated eq. 8 patch (s⁻ = 3): the effect map is |s⁻·(n − u)| averaged over channels, against n
    and u as the model returned them (a function wrapper keeps each call's outputs; stored in fp16, so 1e-3), and only
    at the steps where the negative is on."""
    outputs = {}

    def keep(apply_model, args):
        out = apply_model(args["input"], args["timestep"], **args["c"])
        for slot, chunk in zip(args["cond_or_uncond"], out.chunk(len(args["cond_or_uncond"])), strict=True):
            outputs[(float(args["timestep"][0]), slot)] = chunk
        return out

    model = patched(tiny, tiny.model(), neg_start=0.5, empty=None, clip=tiny.clip).clone()
    model.set_model_unet_function_wrapper(keep)
    handle, samples = captured_run(tiny, model=model)
    store = handle.recorder.finished
    assert sorted(store.effects) == [(3, "negative"), (4, "negative"), (5, "negative")]
    for step in (3, 4, 5):
        n, u = (outputs[(store.sigmas[step], slot)] for slot in (1, 2))  # the batch's slots: p, n, u
        by_hand = (3.0 * (n - u)).abs().mean(dim=1)
        torch.testing.assert_close(store.effects[(step, "negative")].float(), by_hand, rtol=1e-3, atol=1e-6)  # fp16
    data, *_ = analyse(handle, samples)
    effect = data["effect"]["negative"]
    assert effect[:3] == [0.0, 0.0, 0.0] and min(effect[3:]) > 0
    assert data["curves"]["glasses"]["r"][:3] == [None, None, None]


def test_the_analysis_reports_progress(tiny):
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        analyse(*captured_run(tiny, negative="glasses, blurry"))
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert calls[-2:] == [(1, 2), (2, 2)]  # one tick per negative word
