"""Boot ComfyUI inside this process on the CPU, with only this pack and the test pack as custom nodes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import locate


def boot(workdir: Path) -> None:
    """Import ComfyUI from locate.find_comfyui(), load the built-in and our custom nodes; outputs go to workdir."""
    sys.path.insert(0, str(locate.find_comfyui()))
    from comfy.cli_args import args

    args.cpu = True
    import utils.extra_config  # noqa: F401  (must precede execution/nodes, which put comfy/ on sys.path)

    import folder_paths
    import nodes
    import server  # noqa: F401

    packs = workdir / "custom_nodes"
    packs.mkdir(parents=True, exist_ok=True)
    for name, target in (("negative_guidance", locate.PACK_ROOT),
                         ("negative_guidance_testing", locate.PACK_ROOT / "tests" / "support" / "testing_pack")):
        if not (packs / name).exists():
            (packs / name).symlink_to(target)
    folder_paths.folder_names_and_paths["custom_nodes"] = ([str(packs)], set())
    for kind in ("output", "temp"):
        (workdir / kind).mkdir(exist_ok=True)
    folder_paths.set_output_directory(str(workdir / "output"))
    folder_paths.set_temp_directory(str(workdir / "temp"))
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    if "NegativeGuidanceGuider" not in nodes.NODE_CLASS_MAPPINGS:
        raise RuntimeError("the pack did not load: see ComfyUI's log above")
