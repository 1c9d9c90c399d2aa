"""The pack as the tests see it: ComfyUI's one package, by submodule (``pack.guidance``, ``pack.module('nodes.x')``).

See scripts/harness.py: the tests never import a second copy of the pack.
"""

from __future__ import annotations

import harness

ROOT = harness.PACK_ROOT
module = harness.module


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return harness.module(name)
