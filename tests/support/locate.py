"""Where the tests find ComfyUI, and where the test environment is cached.

Order: ``$COMFYUI_PATH``; the ComfyUI whose ``custom_nodes/`` holds this pack; the default cache
``~/.cache/comfyui-negative-guidance/ComfyUI`` (``$NEGATIVE_GUIDANCE_CACHE`` moves the cache).
Run as a script, it prints the ComfyUI path, or nothing when there is none.
"""

from __future__ import annotations

import os
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
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


if __name__ == "__main__":
    found = find_comfyui()
    print(found if found else "")
