"""Where the tests find ComfyUI and cache their environment: the rule of the pack's ``toy/headless.py``.

Run as a script, it prints the ComfyUI path, or nothing when there is none.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("negative_guidance_headless", PACK_ROOT / "toy" / "headless.py")
headless = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(headless)
PINNED_COMMIT, cache_dir, find_comfyui = headless.PINNED_COMMIT, headless.cache_dir, headless.find_comfyui

if __name__ == "__main__":
    found = find_comfyui()
    print(found if found else "")
