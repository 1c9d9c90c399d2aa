"""AttentionCapture → sampler → AttentionRt, on the tiny model: in graphs and node by node."""

import json
from pathlib import Path

import graphs
import pytest
import torch
from comfy_helpers import call_node

TEXT = "professional office woman"
CAPTURE = dict(positive_words="", negative_words="", special_tokens=False, max_mb=64.0, over_cap="error")


def test_the_analysis_runs_after_the_sampler_in_one_graph(run_graph):
    g, model, _, c = graphs.tiny_graph({"p": TEXT, "n": "glasses"})
    capture = g.node("AttentionCapture", model=model, clip=g.out(model, 1), positive_text=TEXT,
                     negative_text="glasses", **CAPTURE)
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    samples = graphs.ksampler(g, capture, c["p"], c["n"], latent, steps=6)
    rt = g.node("AttentionRt", capture=g.out(capture, 1), samples=samples, score="mean_square", gate_fraction=0.5,
                related="", filename_prefix="graph/rt")
    history, _ = run_graph(g.prompt)
    assert history[rt[0]]["text"][0].startswith("suggested neg_start")
    curves = history[rt[0]]["negative_guidance_rt"][0]  # what web/js draws in the node
    assert curves["words"] == ["glasses"] and len(curves["r"][0]) == 6 and curves["gate_step"] in range(6)


def test_capture_with_sampler_custom_advanced_and_our_guider(run_graph):
    g, model, _, c = graphs.tiny_graph({"p": TEXT, "n": "glasses", "u": ""})
    capture = g.node("AttentionCapture", model=model, clip=g.out(model, 1), positive_text=TEXT,
                     negative_text="glasses", **CAPTURE)
    guider = g.node("NegativeGuidanceGuider", model=capture, positive=c["p"], negative=c["n"], empty=c["u"],
                    mode="independent", cfg=7.0, neg_scale=3.0, neg_start=0.5, neg_end=1.0, window_unit="steps",
                    neg_schedule="constant")
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    samples = graphs.custom_sample(g, capture, guider, latent, steps=6)
    rt = g.node("AttentionRt", capture=g.out(capture, 1), samples=samples, score="frobenius", gate_fraction=0.5,
                related="", filename_prefix="graph/rt")
    history, _ = run_graph(g.prompt)
    assert "glasses→" in history[rt[0]]["text"][0]


def captured_run(tiny, positive, negative, **inputs):
    """Capture a 6-step KSampler run of the tiny model; return the capture handle."""
    import tiny as tiny_models

    import comfy.sample

    clip = tiny_models.tiny_clip()
    model, capture = call_node("AttentionCapture", model=tiny.model(), clip=clip, positive_text=positive,
                               negative_text=negative, **CAPTURE | inputs)
    p, n = tiny_models.encode(clip, positive), tiny_models.encode(clip, negative)
    comfy.sample.sample(model, tiny.noise, 6, 7.0, "euler", "normal", p, n, tiny.latent, seed=42, disable_pbar=True)
    return capture


def analyse(capture, **inputs):
    settings = dict(samples={}, score="frobenius", gate_fraction=0.5, related="", filename_prefix="test/rt") | inputs
    data, step, start, plot, heatmaps, effects, overlays = call_node("AttentionRt", capture=capture, **settings)
    if "image" in settings:
        assert overlays.shape == (len(capture.words["negative"]), *settings["image"].shape[1:])
    assert plot.shape == (1, 256, 512, 3)
    assert heatmaps.shape[0] == effects.shape[0] == 1 and heatmaps.shape[-1] == effects.shape[-1] == 3
    return json.loads(data), step, start


def test_a_negative_equal_to_the_positive_gives_r_one_with_itself(tiny):
    data, step, start = analyse(captured_run(tiny, TEXT, TEXT))
    assert data["steps"] == [0, 1, 2, 3, 4, 5]
    for word, curve in data["curves"].items():
        assert curve["related"] == word
        assert curve["r"] == pytest.approx([1.0] * 6)
    assert (step, start) == (0, 0.0)


def test_weighted_syntax_multi_piece_words_and_special_tokens(tiny):
    capture = captured_run(tiny, "a (zxqvbn:1.3) office", "(glasses:0.8), zxqvbn", special_tokens=True)
    assert capture.words["positive"] == ["a", "zxqvbn", "office", "<bos>", "<eos>"]
    assert capture.words["negative"] == ["glasses", "zxqvbn", "<bos>", "<eos>"]
    maps = next(iter(capture.store.layers(0, "positive").values()))
    assert maps.shape[1] == 5
    data, _, _ = analyse(capture, related="glasses=office", image=torch.rand(1, 64, 64, 3))
    assert data["curves"]["glasses"]["related"] == "office"


def test_a_multi_piece_word_sums_its_pieces(comfy):
    import tiny as tiny_models
    from comfy_helpers import pack_module

    clip = tiny_models.tiny_clip()
    columns = pack_module("nodes.attention_nodes").word_columns("AttentionCapture", "positive_words", clip,
                                                                "a zxqvbn", ["zxqvbn"], False)
    assert len(columns[0]) > 1 and columns[0][0] == 2


def test_a_missing_word_lists_the_prompt_words(tiny):
    with pytest.raises(ValueError, match="^AttentionCapture: input 'negative_words': 'hat' is not in the prompt; "
                                         "its words are: glasses, blurry$"):
        captured_run(tiny, TEXT, "glasses, blurry", negative_words="hat")


def test_an_empty_capture_gets_a_clear_message(tiny):
    import tiny as tiny_models

    _, capture = call_node("AttentionCapture", model=tiny.model(), clip=tiny_models.tiny_clip(), positive_text=TEXT,
                           negative_text="glasses", **CAPTURE)
    with pytest.raises(ValueError, match="^AttentionRt: the capture holds no maps"):
        analyse(capture)


def test_a_new_run_replaces_the_previous_maps(tiny):
    import tiny as tiny_models
    from comfy_helpers import sample

    model, capture = call_node("AttentionCapture", model=tiny.model(), clip=tiny_models.tiny_clip(),
                               positive_text=TEXT, negative_text="glasses", **CAPTURE)
    sample(tiny, model, steps=6)
    sample(tiny, model, steps=4)
    assert capture.store.steps() == [0, 1, 2, 3]


def test_exports_land_in_the_output_folder_and_cannot_escape_it(tiny):
    import csv

    import safetensors.torch

    import folder_paths

    capture = captured_run(tiny, TEXT, "glasses")
    data, _, _ = analyse(capture, filename_prefix="exports/rt")
    folder = folder_paths.get_output_directory()
    json_path = sorted((Path(folder) / "exports").glob("rt_*_.json"))[-1]
    assert json.loads(json_path.read_text()) == data
    rows = list(csv.DictReader(json_path.with_suffix(".csv").open()))
    assert len(rows) == 6 and rows[0]["word"] == "glasses"
    maps = safetensors.torch.load_file(json_path.with_suffix(".safetensors"))
    assert maps["negative/middle.0.0"].shape == (6, 1, 4, 4)  # 6 steps, 1 word, the tiny UNet's middle at 4×4
    escape = "^AttentionRt: input 'filename_prefix': .*Saving image outside the output folder"
    with pytest.raises(ValueError, match=escape):
        analyse(capture, filename_prefix="../../escape")


def test_effect_maps_with_negative_guidance(tiny):
    """Captured under a gated eq. 8 patch: |s⁻·(n − u)| is recorded only at the steps where the negative is on."""
    import tiny as tiny_models
    from comfy_helpers import patched

    import comfy.sample

    clip = tiny_models.tiny_clip()
    guided = patched(tiny, tiny.model(), neg_start=0.5, empty=tiny_models.encode(clip, ""))
    model, capture = call_node("AttentionCapture", model=guided, clip=clip, positive_text=TEXT,
                               negative_text="glasses", **CAPTURE)
    p, n = tiny_models.encode(clip, TEXT), tiny_models.encode(clip, "glasses")
    comfy.sample.sample(model, tiny.noise, 6, 7.0, "euler", "normal", p, n, tiny.latent, seed=42, disable_pbar=True)
    assert sorted(capture.store.effects) == [(3, "negative"), (4, "negative"), (5, "negative")]
    assert capture.store.effects[(3, "negative")].shape == (2, 8, 8)
    data, _, _ = analyse(capture)
    effect = data["effect"]["negative"]
    assert effect[:3] == [0.0, 0.0, 0.0] and min(effect[3:]) > 0
    assert data["steps"] == [0, 1, 2, 3, 4, 5]


def test_the_analysis_reports_progress(tiny):
    import comfy.utils

    calls = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        analyse(captured_run(tiny, TEXT, "glasses, blurry"))
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert calls[-2:] == [(1, 2), (2, 2)]  # one tick per negative word
