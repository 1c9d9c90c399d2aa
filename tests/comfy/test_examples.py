"""The example workflows: up to date with tests/support/examples.py, every node and input name still in ComfyUI and
the pack (the rename guard for shared workflows), a note and a thumbnail in each, and their API form runs offline:
the toy-model examples as they are, the real-family ones on the tiny seeded model of the same family."""

import json
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
        "11_flux_dev_cfg1_attention_negative": "flux"}
LOADERS = set(examples.LOADER_OUTPUTS)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


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
    }
    assert {name: examples.EXAMPLES[name].family for name in REAL} == REAL


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
