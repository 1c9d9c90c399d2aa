"""ComfyUI in this process (CPU): the pack and the test-only loader pack load through ComfyUI's own loader,
and graphs run through ``execution.PromptExecutor`` from API-format JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import comfy_helpers
import harness
import pytest


@pytest.fixture(autouse=True)
def family_available(request):
    """A tiny family this ComfyUI cannot build is skipped, saying why: its Flux has no text rope axes (FluxRope4
    needs v0.33's ``txt_ids_dims``), or its CLIP reads a file this checkout lacks (v0.33 reads
    comfy/text_encoders/llama_tokenizer/tokenizer.json when HiDream's and HunyuanVideo's tokenizers are built, v0.3.64
    did not; the GitHub mirror the project reads omits files of 4 MiB and more, a clone of upstream has it)."""
    family = getattr(request.node, "callspec", None) and request.node.callspec.params.get("family")
    if not isinstance(family, str):
        return
    request.getfixturevalue("comfy")
    import tiny_families

    if family in tiny_families.UNBUILDABLE:
        pytest.skip(f"{family}: {tiny_families.UNBUILDABLE[family]}")
    try:
        tiny_families.clip(family)
    except FileNotFoundError as error:
        pytest.skip(f"{family}: this ComfyUI lacks {error.filename}")


@pytest.fixture
def one_thread(comfy):
    """One torch thread for the test: the tiny models are faster so when the CPU is shared."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """ComfyUI's modules, booted once: CPU only, custom nodes = this pack + the test pack, a temp output dir."""
    comfy_helpers.boot(tmp_path_factory.mktemp("comfy"))
    return sys.modules


@pytest.fixture
def run_graph(comfy):
    """Validate and execute an API-format prompt; return (history outputs, {SaveLatent prefix: latent})."""
    import safetensors.torch

    import folder_paths

    def run(prompt: dict):
        history = harness.execute(prompt)
        latents = {}
        for node_id, ui in history.items():
            for item in ui.get("latents", []):
                path = Path(folder_paths.get_output_directory()) / item["subfolder"] / item["filename"]
                latents[prompt[node_id]["inputs"]["filename_prefix"]] = safetensors.torch.load_file(path)[
                    "latent_tensor"
                ]
        return history, latents

    return run



@pytest.fixture
def tiny(comfy):
    """The tiny models, the three prompts, a batch-2 latent and its noise."""
    import types

    import tiny as tiny_models
    import torch

    import comfy.sample

    clip = tiny_models.tiny_clip()
    latent = torch.zeros(2, 4, 8, 8)
    return types.SimpleNamespace(
        model=tiny_models.tiny_model,
        clip=clip,
        p=tiny_models.encode(clip, "a photo of a cat"),
        n=tiny_models.encode(clip, "blurry, dog"),
        u=tiny_models.encode(clip, ""),
        latent=latent,
        noise=comfy.sample.prepare_noise(latent, 42),
    )
