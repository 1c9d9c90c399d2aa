"""The example workflows: up to date with tests/support/examples.py, every node and input name still in ComfyUI and
the pack (the rename guard for shared workflows), a note and a thumbnail in each (a screenshot of the pack's nodes
where the example needs real models), and their API form runs offline: the toy-model examples as they are, the
real-family ones on the tiny seeded model of the same family, where the cfg-1 ones evaluate their negatives as their
notes say."""

import json
import logging
from pathlib import Path

import examples
import harness
import pytest
import workflows
from comfy_helpers import PACK_NODES

FOLDER = harness.PACK_ROOT / "example_workflows"
EXAMPLES = sorted(FOLDER.glob("*.json"))
REAL = {"6_sdxl_delayed_negative_r_t": "sdxl", "7_sd35_medium_independent_scales_eq8": "sd3",
        "8_flux_dev_true_cfg_negative": "flux", "9_wan21_t2v_1_3b_negative_video": "wan21",
        "11_flux_dev_cfg1_attention_negative": "flux", "12_flux2_klein_cfg1_two_attention_negatives": "flux2_klein",
        "13_z_image_turbo_cfg1_independent_negative": "z_image",
        "14_wan22_t2v_14b_cfg1_4step_attention_negative": "wan21",  # Wan 2.2 14B is Wan 2.1's architecture
        "15_ltx2_cfg1_video_and_audio_negatives": "ltxav"}
LOADERS = set(examples.LOADER_OUTPUTS) | set(examples.BYPASSED)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def skip_where_the_family_is_missing(path: Path) -> None:
    """An example of a family this ComfyUI has no model of (Flux.2 and Z-Image on v0.3.64) is skipped, saying why:
    its nodes and its tiny model exist from the release that added the family."""
    import tiny_families

    family = examples.EXAMPLES[path.stem].family
    if family in tiny_families.UNBUILDABLE:
        pytest.skip(f"{path.stem}: {family}: {tiny_families.UNBUILDABLE[family]}")


def test_the_examples_are_up_to_date(comfy):
    """Generated on the default ComfyUI: core nodes gain outputs between releases (v0.33's SaveImage returns its
    images), which the frontend of any release adds to a loaded workflow."""
    from comfy_helpers import pack_module

    assert [path.stem for path in EXAMPLES] == sorted(examples.EXAMPLES)
    if pack_module("nodes.compat").comfyui_version() != harness.DEFAULT_RELEASE.removeprefix("v"):
        pytest.skip(f"the examples are generated on ComfyUI {harness.DEFAULT_RELEASE}")
    for path in EXAMPLES:
        fresh = examples.workflow(path.stem, workflows.node_info)
        assert load(path) == json.loads(json.dumps(fresh)), f"{path.name}: run python tests/support/examples.py"


def test_the_real_family_examples_load_the_files_users_have():
    files = {path.stem: {(n["type"], *map(str, n["widgets_values"])) for n in load(path)["nodes"]
                         if n["type"] in LOADERS} for path in EXAMPLES if path.stem in REAL}
    assert files == {
        "6_sdxl_delayed_negative_r_t": {("CheckpointLoaderSimple", "sd_xl_base_1.0.safetensors")},
        "7_sd35_medium_independent_scales_eq8": {
            ("CheckpointLoaderSimple", "sd3.5_medium.safetensors"),
            ("TripleCLIPLoader", "clip_g.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors")},
        "8_flux_dev_true_cfg_negative": {
            ("UNETLoader", "flux1-dev.safetensors", "default"),
            ("DualCLIPLoader", "clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"),
            ("VAELoader", "ae.safetensors")},
        "9_wan21_t2v_1_3b_negative_video": {
            ("UNETLoader", "wan2.1_t2v_1.3B_fp16.safetensors", "default"),
            ("CLIPLoader", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan", "default"),
            ("VAELoader", "wan_2.1_vae.safetensors")},
        "11_flux_dev_cfg1_attention_negative": {
            ("UNETLoader", "flux1-dev.safetensors", "default"),
            ("DualCLIPLoader", "clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"),
            ("VAELoader", "ae.safetensors")},
        "12_flux2_klein_cfg1_two_attention_negatives": {  # ComfyUI's template image_flux2_klein_text_to_image
            ("UNETLoader", "flux-2-klein-4b.safetensors", "default"),
            ("CLIPLoader", "qwen_3_4b.safetensors", "flux2", "default"),
            ("VAELoader", "flux2-vae.safetensors")},
        "13_z_image_turbo_cfg1_independent_negative": {  # ComfyUI's template image_z_image_turbo
            ("UNETLoader", "z_image_turbo_bf16.safetensors", "default"),
            ("CLIPLoader", "qwen_3_4b.safetensors", "lumina2", "default"),
            ("VAELoader", "ae.safetensors")},
        "14_wan22_t2v_14b_cfg1_4step_attention_negative": {  # ComfyUI's template video_wan2_2_14B_t2v, 4 steps
            ("UNETLoader", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "default"),
            ("UNETLoader", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", "default"),
            ("LoraLoaderModelOnly", "wan2.2_t2v_lightx2v_4steps_lora_v1.1_high_noise.safetensors", "1.0"),
            ("LoraLoaderModelOnly", "wan2.2_t2v_lightx2v_4steps_lora_v1.1_low_noise.safetensors", "1.0"),
            ("CLIPLoader", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan", "default"),
            ("VAELoader", "wan_2.1_vae.safetensors")},
        "15_ltx2_cfg1_video_and_audio_negatives": {  # ComfyUI's LTX-2 templates (video_ltx2_t2v, distilled)
            ("CheckpointLoaderSimple", "ltx-2-19b-distilled-fp8.safetensors"),
            ("LTXAVTextEncoderLoader", "gemma_3_12B_it_fp4_mixed.safetensors", "ltx-2-19b-distilled-fp8.safetensors",
             "default")},
    }
    assert {name: examples.EXAMPLES[name].family for name in REAL} == REAL


def test_the_thumbnail_of_an_example_that_needs_real_models_frames_the_packs_nodes():
    """Its thumbnail is a screenshot of its workflow (tests/support/screenshots.py), framed on nodes of the pack and
    captioned so; a toy example's thumbnail is a run, and frames nothing."""
    for name, spec in examples.EXAMPLES.items():
        example = spec.build()
        framed = {example.prompt[node_id]["class_type"] for node_id in example.framed}
        if spec.family:
            assert framed and framed <= set(PACK_NODES) and spec.label[-1] == examples.SCREENSHOT, name
        else:
            assert not framed and spec.label == examples.TOY, name


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_uses_the_pack_as_a_user_would(path):
    """u comes from clip (no CLIPTextEncode("") into empty); a capture's prompts are typed in it and its outputs
    go to the sampler."""
    workflow = load(path)
    nodes = {node["id"]: node for node in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}
    ours = [n for n in nodes.values() if n["type"] in ("NegativeGuidanceCFG", "NegativeGuidanceGuider")]
    assert ours
    for node in ours:
        wired = {entry["name"] for entry in node["inputs"] if entry["link"] is not None}
        assert "clip" in wired and "empty" not in wired, (path.name, node["id"])
    for node in (n for n in nodes.values() if n["type"] == "AttentionCapture"):
        targets = {(nodes[links[i][3]]["type"], links[i][2]) for output in node["outputs"] for i in output["links"]}
        assert {slot for _, slot in targets} == {0, 1, 2, 3}, path.name  # model, capture, positive, negative


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_has_a_note_and_a_thumbnail(path):
    from PIL import Image

    notes = [n for n in load(path)["nodes"] if n["type"] in workflows.FRONTEND_ONLY]
    assert len(notes) == 1 and "**Look at:**" in notes[0]["widgets_values"][0], path.name
    if path.stem in REAL:
        assert "**Needs**" in notes[0]["widgets_values"][0]
    if "flux" in path.stem:  # a negative on Flux dev: true CFG, or attention space at cfg 1
        note = notes[0]["widgets_values"][0]
        assert "cfg > 1" in note or "Attention-Space Negative Term" in note
    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.exists(), f"{thumbnail.name}: run python tests/support/examples.py"
    assert thumbnail.stat().st_size < 64 * 1024
    with Image.open(thumbnail) as image:
        assert (image.format, image.size) == ("JPEG", (384, 384))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_node_and_input_an_example_uses_exists(comfy, path):
    """Rename guard: a renamed node id or input breaks shared workflows, so it must break this test first."""
    import nodes

    skip_where_the_family_is_missing(path)

    for node in load(path)["nodes"]:
        if node["type"] in workflows.FRONTEND_ONLY:  # Note, MarkdownNote: the frontend's own, text only
            assert node["inputs"] == node["outputs"] == [] and [type(v) for v in node["widgets_values"]] == [str]
            continue
        assert node["type"] in nodes.NODE_CLASS_MAPPINGS, f"{path.name}: node {node['type']} no longer exists"
        info = workflows.node_info(node["type"])
        names = dict(workflows.input_specs(info))
        for entry in node["inputs"]:
            assert entry["name"] in names, f"{path.name}: {node['type']} has no input {entry['name']}"
        assert len(node["widgets_values"]) == len(workflows.widget_slots(info)), f"{path.name}: {node['type']}"
        outputs = [o["name"] for o in node["outputs"]]
        if node["type"] in PACK_NODES:  # the pack's outputs are its contract; a core node may gain one between releases
            assert outputs == list(info["output_name"]), f"{path.name}: {node['type']}"
        linked = [o["name"] for o in node["outputs"] if o["links"]]
        assert set(linked) <= set(info["output_name"]), f"{path.name}: {node['type']} has no output {linked}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_api_form_of_every_example_runs_offline(run_graph, path):
    """Toy-model examples as shipped; real-family ones with every loader replaced by the tiny model of the family."""
    skip_where_the_family_is_missing(path)
    prompt = examples.test_prompt(path.stem, workflows.node_info)
    kinds = {node["class_type"] for node in prompt.values()}
    if path.stem in REAL:
        assert not kinds & LOADERS and "NegativeGuidanceTestTinyFamily" in kinds
        assert {n["inputs"]["family"] for n in prompt.values() if "family" in n["inputs"]} == {REAL[path.stem]}
    else:
        assert "ToyConceptModelLoader" in kinds
    history, _ = run_graph(prompt)
    shown = examples.EXAMPLES[path.stem].build().shown
    assert shown and all(history[node_id]["images"] for node_id in shown)  # what the thumbnail is made of
    if "AttentionRt" in kinds:
        rt = next(node_id for node_id, node in prompt.items() if node["class_type"] == "AttentionRt")
        assert history[rt]["negative_guidance_rt"][0]["words"]


CFG1_RUNS = {  # at the tests' 4 steps: what each sampler's run evaluates, as the example's note says
    "12_flux2_klein_cfg1_two_attention_negatives": [  # the windows 0–0.5 and 0.3–1: steps 0–1 and 1–3
        "this run made 4 model calls over 4 steps (1 model evaluation per step), which evaluated 4 conditionings "
        "and 5 attention-space negatives"],
    "13_z_image_turbo_cfg1_independent_negative": [  # p, n and u in the window 0–0.5, then p alone
        "conditionings per model call: 3 (steps 0–1), 1 (steps 2–3)",
        "this run made 4 model calls over 4 steps (1 model evaluation per step), which evaluated 8 conditionings"],
    "14_wan22_t2v_14b_cfg1_4step_attention_negative": 2 * [  # each expert's 2 steps, the negative in both
        "this run made 2 model calls over 2 steps (1 model evaluation per step), which evaluated 2 conditionings "
        "and 2 attention-space negatives"],
    "15_ltx2_cfg1_video_and_audio_negatives": [  # the video negative at all 8 steps, the audio one from step 2
        "this run made 8 model calls over 8 steps (1 model evaluation per step), which evaluated 8 conditionings "
        "and 14 attention-space negatives"],
}


@pytest.mark.parametrize("name", CFG1_RUNS)
def test_the_cfg1_examples_evaluate_their_negatives_as_their_notes_say(run_graph, caplog, name):
    """On the tiny model of their family, at cfg 1: Flux.2 Klein's two windowed attention-space negatives inside 1
    model evaluation per step; Z-Image's eq. 8 negative as 3 prompts per step inside its window; Wan 2.2's
    attention-space negative in both experts of the 4-step split."""
    skip_where_the_family_is_missing(FOLDER / f"{name}.json")
    prompt = examples.test_prompt(name, workflows.node_info)
    assert {n["inputs"]["cfg"] for n in prompt.values() if "cfg" in n["inputs"]} == {1.0}
    with caplog.at_level(logging.INFO):
        run_graph(prompt)
    lines = [line for line in caplog.text.splitlines() if "this run made" in line or "per model call:" in line]
    for expected in CFG1_RUNS[name]:
        assert sum(expected in line for line in lines) == CFG1_RUNS[name].count(expected), (expected, lines)
