"""ComfyUI in this process (CPU): the pack and the test-only loader pack load through ComfyUI's own loader,
and graphs run through ``execution.PromptExecutor`` from API-format JSON."""

from __future__ import annotations

import sys
from pathlib import Path

import comfy_helpers
import harness
import pytest

LLAMA3_TOKENIZER = Path("comfy") / "text_encoders" / "llama_tokenizer" / "tokenizer.json"
FAMILY_FILES = {"hidream": LLAMA3_TOKENIZER, "hunyuan_video": LLAMA3_TOKENIZER}  # what a family's CLIP reads at build


def pytest_collection_modifyitems(items):
    """A family whose CLIP reads a ComfyUI file this checkout lacks is skipped, naming the file (a clone of
    upstream ComfyUI has it; the GitHub mirrors the project can read omit files of 4 MiB and more)."""
    comfyui = harness.find_comfyui()
    for item in items:
        family = getattr(item, "callspec", None) and item.callspec.params.get("family")
        needed = FAMILY_FILES.get(family)
        if comfyui is not None and needed is not None and not (comfyui / needed).exists():
            item.add_marker(pytest.mark.skip(reason=f"{family}: this ComfyUI lacks {needed}"))


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
