"""End to end through a real ComfyUI server and the random full-size SD1.5 checkpoint (CheckpointLoaderSimple)."""

import torch
from comfy_helpers import PACK_NODES
from graphs import Graph, custom_sample, ksampler, save_latent

GUIDANCE, ATTENTION = "sampling/negative guidance", "analysis/attention"
CATEGORIES = {"NegativeGuidanceGuider": GUIDANCE, "NegativeGuidanceCFG": GUIDANCE, "NegativeTerm": GUIDANCE,
              "AttentionNegativeTerm": GUIDANCE, "AttentionCapture": ATTENTION, "AttentionRt": ATTENTION,
              "ToyConceptModelLoader": "loaders"}  # every node of the pack (comfy_helpers.PACK_NODES)


def sd15_graph():
    g = Graph()
    loader = g.node("CheckpointLoaderSimple", ckpt_name="rand_sd15.safetensors")
    clip = g.out(loader, 1)
    c = {k: g.node("CLIPTextEncode", text=t, clip=clip) for k, t in
         (("p", "professional office woman"), ("n", "glasses"), ("u", ""))}
    return g, loader, c, g.node("EmptyLatentImage", width=64, height=64, batch_size=1)


def test_the_pack_loads_with_a_tooltip_on_every_input(server):
    assert sorted(CATEGORIES) == sorted(PACK_NODES)
    info = server.get("/object_info")
    for node, category in CATEGORIES.items():
        assert info[node]["category"] == category
        assert info[node]["description"]
        for group in ("required", "optional"):
            for name, spec in info[node]["input"].get(group, {}).items():
                assert spec[1].get("tooltip"), (node, name)


def test_standard_patch_is_ksampler_on_sd15(server):
    g, model, c, latent = sd15_graph()
    patched = g.node("NegativeGuidanceCFG", model=model, empty=c["u"], mode="standard", neg_scale=6.0, neg_start=0.0,
                     neg_end=1.0, window_unit="steps", neg_schedule="constant")
    ours = save_latent(g, ksampler(g, patched, c["p"], c["n"], latent, seed=1), "ours")
    oracle = save_latent(g, ksampler(g, model, c["p"], c["n"], latent, seed=1), "oracle")
    entry = server.run(g.prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert torch.equal(server.latent(entry, ours[0]), server.latent(entry, oracle[0]))


def test_eq8_guider_is_dual_cfg_on_sd15(server):
    g, model, c, latent = sd15_graph()
    ours_guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], empty=c["u"],
                         mode="independent", cfg=7.0, neg_scale=3.0, neg_start=0.0, neg_end=1.0,
                         window_unit="steps", neg_schedule="constant")
    dual = g.node("DualCFGGuider", model=model, cond1=c["p"], cond2=c["u"], negative=c["n"], cfg_conds=7.0,
                  cfg_cond2_negative=4.0, style="regular")
    ours = save_latent(g, custom_sample(g, model, ours_guider, latent, seed=2), "ours")
    oracle = save_latent(g, custom_sample(g, model, dual, latent, seed=2), "oracle")
    entry = server.run(g.prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    ours, oracle = server.latent(entry, ours[0]), server.latent(entry, oracle[0])
    assert ((ours - oracle).abs().max() / oracle.abs().max()).item() <= 1e-5
    text = entry["outputs"][ours_guider[0]]["text"][0]
    assert text.startswith("3 conditionings per model call, in one batch")


def test_bad_input_is_reported_with_node_and_input(server):
    g, model, c, latent = sd15_graph()
    patched = g.node("NegativeGuidanceCFG", model=model, empty=c["u"], mode="independent", neg_scale=3.0,
                     neg_start=0.8, neg_end=0.2, window_unit="steps", neg_schedule="constant")
    save_latent(g, ksampler(g, patched, c["p"], c["n"], latent, seed=3), "bad")
    entry = server.run(g.prompt)
    assert entry["status"]["status_str"] == "error"
    errors = [data for event, data in entry["status"]["messages"] if event == "execution_error"]
    assert errors[0]["node_type"] == "NegativeGuidanceCFG"
    assert errors[0]["exception_message"].startswith("NegativeGuidanceCFG: input 'neg_start'")
