"""ComfyUI for the pack's tests, benchmarks, demo and study runner: find it, boot it in this process on the CPU,
load this pack the way ComfyUI does, and run API-format graphs through its executor, with no server.

The pack is one package under one name: the name ComfyUI's loader gives it (``nodes.load_custom_node``: the
folder's path, dots as "_x_"), from a fixed link to this checkout in the cache. ``load_pack`` imports it under that
name before ComfyUI boots (for the pure guidance/attention/toy modules), and ComfyUI's own loader then reuses its
modules. This file imports nothing from the pack and never puts the pack's root on sys.path, where its ``nodes/``
would shadow ComfyUI's ``nodes`` module.

ComfyUI is found at ``$COMFYUI_PATH``, else as the ComfyUI whose ``custom_nodes/`` holds this pack, else in the cache
``~/.cache/comfyui-negative-guidance/ComfyUI-<release>`` (``$NEGATIVE_GUIDANCE_CACHE`` moves the cache;
``$COMFYUI_RELEASE`` picks one of ``RELEASES``, by default the newest). Where the tested releases differ, the
difference lives here (the executor's cache arguments) or in the pack's ``nodes/compat.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import itertools
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType

PACK_ROOT = Path(__file__).resolve().parents[1]
RELEASES = {  # the ComfyUI releases the suite runs on: the default first, the floor last
    "v0.33.0": "2f35f4a08176d993cded35dac3332be4f7287f41",
    "v0.3.64": "a125cd84b054a57729b5eecab930ca9408719832",
}
DEFAULT_RELEASE = next(iter(RELEASES))
PACK_FOLDER = "negative_guidance"


def cache_dir() -> Path:
    """The folder that holds the test venvs, the pinned ComfyUIs, the random checkpoint and the pack links."""
    default = Path.home() / ".cache" / "comfyui-negative-guidance"
    return Path(os.environ.get("NEGATIVE_GUIDANCE_CACHE", default))


def release() -> str:
    """The ComfyUI release asked for: ``$COMFYUI_RELEASE``, else the default."""
    name = os.environ.get("COMFYUI_RELEASE") or DEFAULT_RELEASE
    if name not in RELEASES:
        raise SystemExit(f"COMFYUI_RELEASE={name!r}: the tested releases are {', '.join(RELEASES)}")
    return name


def is_comfyui(path: Path) -> bool:
    """A ComfyUI checkout has main.py, nodes.py and the comfy package."""
    return all((path / name).exists() for name in ("main.py", "nodes.py", "comfy/samplers.py"))


def find_comfyui() -> Path | None:
    """The first ComfyUI of: $COMFYUI_PATH, the one this pack is installed in, the cached clone of ``release()``."""
    candidates = []
    if os.environ.get("COMFYUI_PATH"):
        candidates.append(Path(os.environ["COMFYUI_PATH"]))
    if PACK_ROOT.parent.name == "custom_nodes":
        candidates.append(PACK_ROOT.parent.parent)
    candidates.append(cache_dir() / f"ComfyUI-{release()}")
    return next((path.resolve() for path in candidates if is_comfyui(path)), None)


def links_dir(kind: str) -> Path:
    """A custom_nodes folder of links for this checkout: 'pack' holds only this pack, 'extra' the test packs."""
    checkout = hashlib.sha1(str(PACK_ROOT).encode("utf-8")).hexdigest()[:12]
    return cache_dir() / "packs" / checkout / kind


def link(folder: Path, name: str, target: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.is_symlink() or path.resolve() != target.resolve():
        path.unlink(missing_ok=True)
        path.symlink_to(target, target_is_directory=True)
    return path


def pack_dir() -> Path:
    """The folder ComfyUI loads the pack from: a link to this checkout."""
    return link(links_dir("pack"), PACK_FOLDER, PACK_ROOT)


def pack_name() -> str:
    """The module name ComfyUI's loader gives the pack (nodes.load_custom_node)."""
    return str(pack_dir()).replace(".", "_x_")


def load_pack() -> ModuleType:
    """The pack as a package under ComfyUI's name for it, imported the way ComfyUI's loader imports it."""
    name = pack_name()
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, pack_dir() / "__init__.py")
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return sys.modules[name]


def module(name: str) -> ModuleType:
    """A submodule of the pack, e.g. module('attention.words')."""
    load_pack()
    return importlib.import_module(f"{pack_name()}.{name}")


def boot(workdir: Path, extra_packs: dict[str, Path] | None = None, output: Path | None = None,
         cpu: bool = True) -> ModuleType:
    """Import ComfyUI (on the CPU unless ``cpu`` is False: then on ComfyUI's own device) and load its nodes, this pack
    and ``extra_packs`` {name: folder} as custom nodes; outputs go to ``output`` (default ``workdir``/output). Returns
    the pack as ComfyUI loaded it."""
    comfyui = find_comfyui()
    if comfyui is None:
        raise SystemExit("ComfyUI not found: set COMFYUI_PATH to a ComfyUI checkout")
    sys.path.insert(0, str(comfyui))
    from comfy.cli_args import args

    args.cpu = cpu
    import utils.extra_config  # noqa: F401  (must precede execution/nodes, which put comfy/ on sys.path)

    import folder_paths
    import nodes
    import server  # noqa: F401

    load_pack()
    folders = [str(pack_dir().parent)]
    for name, target in (extra_packs or {}).items():
        folders.append(str(link(links_dir("extra"), name, target).parent))
    folder_paths.folder_names_and_paths["custom_nodes"] = (list(dict.fromkeys(folders)), set())
    output = output or workdir / "output"
    for folder in (output, workdir / "temp"):
        folder.mkdir(parents=True, exist_ok=True)
    folder_paths.set_output_directory(str(output))
    folder_paths.set_temp_directory(str(workdir / "temp"))
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    if "NegativeGuidanceGuider" not in nodes.NODE_CLASS_MAPPINGS:
        raise RuntimeError("the pack did not load: see ComfyUI's log above")
    return sys.modules[pack_name()]


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
    executor = execution.PromptExecutor(QuietServer(), cache_type=execution.CacheType.CLASSIC, **cache_arguments())
    executor.execute(prompt, prompt_id, {}, outputs)
    if not executor.success:
        errors = [data for event, data in executor.status_messages if event == "execution_error"]
        raise RuntimeError(errors[0]["exception_message"] if errors else executor.status_messages)
    return executor.history_result["outputs"]


def cache_arguments() -> dict:
    """What PromptExecutor needs besides the cache type: since 2026 (v0.33) the RAM headroom in GiB, read at the
    start of every prompt; none before. A classic cache releases nothing under RAM pressure, so 0 is right."""
    import execution

    if "cache_args" in inspect.signature(execution.PromptExecutor).parameters:
        return {"cache_args": {"lru": 0, "ram": 0, "ram_inactive": 0}}
    return {}


def required_fields(params_class: type, **values) -> dict:
    """Those of ``values`` that ``params_class`` (a dataclass of a ComfyUI model's parameters) has as fields: model
    configs grow required fields (v0.33's FluxParams ``txt_ids_dims``, ChromaParams ``vec_in_dim``) that older
    releases do not take."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(params_class)}
    return {name: value for name, value in values.items() if name in names}


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


if __name__ == "__main__":  # scripts/env.sh: where is ComfyUI, and which release would be cloned
    if sys.argv[1:] == ["release"]:
        print(release(), RELEASES[release()])
    else:
        found = find_comfyui()
        print(found if found else "")
