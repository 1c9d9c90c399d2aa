"""ComfyUI in this process, on the CPU, with no server: graphs run through ``execution.PromptExecutor``.

ComfyUI is found at ``$COMFYUI_PATH``, else as the ComfyUI whose ``custom_nodes/`` holds this pack, else in the cache
``~/.cache/comfyui-negative-guidance/ComfyUI`` (``$NEGATIVE_GUIDANCE_CACHE`` moves the cache). This module imports
nothing heavy until ``boot``, so it also answers "where is ComfyUI" to plain Python.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import uuid
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[1]
PINNED_COMMIT = "a125cd84b054a57729b5eecab930ca9408719832"  # ComfyUI v0.3.64


def cache_dir() -> Path:
    """The folder that holds the test venv, the pinned ComfyUI and the random checkpoint."""
    default = Path.home() / ".cache" / "comfyui-negative-guidance"
    return Path(os.environ.get("NEGATIVE_GUIDANCE_CACHE", default))


def is_comfyui(path: Path) -> bool:
    """A ComfyUI checkout has main.py, nodes.py and the comfy package."""
    return all((path / name).exists() for name in ("main.py", "nodes.py", "comfy/samplers.py"))


def find_comfyui() -> Path | None:
    """The first ComfyUI of: $COMFYUI_PATH, the one this pack is installed in, the default cache."""
    candidates = []
    if os.environ.get("COMFYUI_PATH"):
        candidates.append(Path(os.environ["COMFYUI_PATH"]))
    if PACK_ROOT.parent.name == "custom_nodes":
        candidates.append(PACK_ROOT.parent.parent)
    candidates.append(cache_dir() / "ComfyUI")
    return next((path.resolve() for path in candidates if is_comfyui(path)), None)


def boot(workdir: Path, extra_packs: dict[str, Path] | None = None, output: Path | None = None) -> None:
    """Import ComfyUI on the CPU and load its nodes, this pack and ``extra_packs`` {name: folder} as custom nodes;
    outputs go to ``output`` (default ``workdir``/output)."""
    comfyui = find_comfyui()
    if comfyui is None:
        raise SystemExit("ComfyUI not found: set COMFYUI_PATH to a ComfyUI checkout")
    sys.path.insert(0, str(comfyui))
    from comfy.cli_args import args

    args.cpu = True
    import utils.extra_config  # noqa: F401  (must precede execution/nodes, which put comfy/ on sys.path)

    import folder_paths
    import nodes
    import server  # noqa: F401

    packs = workdir / "custom_nodes"
    packs.mkdir(parents=True, exist_ok=True)
    for name, target in {"negative_guidance": PACK_ROOT, **(extra_packs or {})}.items():
        if not (packs / name).exists():
            (packs / name).symlink_to(target)
    folder_paths.folder_names_and_paths["custom_nodes"] = ([str(packs)], set())
    output = output or workdir / "output"
    for folder in (output, workdir / "temp"):
        folder.mkdir(parents=True, exist_ok=True)
    folder_paths.set_output_directory(str(output))
    folder_paths.set_temp_directory(str(workdir / "temp"))
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    if "NegativeGuidanceGuider" not in nodes.NODE_CLASS_MAPPINGS:
        raise RuntimeError("the pack did not load: see ComfyUI's log above")


class QuietServer:
    """What PromptExecutor touches of the server: nothing is sent anywhere."""

    client_id = None
    last_node_id = None
    last_prompt_id = None

    def send_sync(self, event, data, sid=None):
        pass

    def queue_updated(self):
        pass


def execute(prompt: dict) -> dict:
    """Validate and run an API-format prompt; return its history outputs {node id: ui}. Raises on any error."""
    import execution

    prompt_id = str(uuid.uuid4())
    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
    if not valid:
        raise ValueError(f"invalid prompt: {error} {node_errors}")
    executor = execution.PromptExecutor(QuietServer(), cache_type=execution.CacheType.CLASSIC)
    executor.execute(prompt, prompt_id, {}, outputs)
    if not executor.success:
        errors = [data for event, data in executor.status_messages if event == "execution_error"]
        raise RuntimeError(errors[0]["exception_message"] if errors else executor.status_messages)
    return executor.history_result["outputs"]


class Graph:
    """An API-format prompt under construction: ``node(class_type, **inputs)`` returns a link to output 0."""

    def __init__(self):
        self.prompt: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def node(self, class_type: str, **inputs) -> list:
        node_id = str(next(self._ids))
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs}
        return [node_id, 0]

    @staticmethod
    def out(link: list, index: int) -> list:
        return [link[0], index]


def ksampler(g: Graph, model, positive, negative, latent, cfg=7.0, steps=4, sampler="euler", seed=42, denoise=1.0,
             scheduler="normal"):
    return g.node("KSampler", model=model, positive=positive, negative=negative, latent_image=latent, seed=seed,
                  steps=steps, cfg=cfg, sampler_name=sampler, scheduler=scheduler, denoise=denoise)


def custom_sample(g: Graph, model, guider, latent, steps=4, sampler="euler", seed=42, denoise=1.0,
                  scheduler="normal"):
    """SamplerCustomAdvanced with RandomNoise, KSamplerSelect and BasicScheduler: the GUIDER path."""
    noise = g.node("RandomNoise", noise_seed=seed)
    select = g.node("KSamplerSelect", sampler_name=sampler)
    sigmas = g.node("BasicScheduler", model=model, scheduler=scheduler, steps=steps, denoise=denoise)
    return g.node("SamplerCustomAdvanced", noise=noise, guider=guider, sampler=select, sigmas=sigmas,
                  latent_image=latent)
