"""Boot ComfyUI inside this process on the CPU, with this pack and the test-only pack as custom nodes."""

from __future__ import annotations

from pathlib import Path

import locate


def boot(workdir: Path) -> None:
    """ComfyUI from locate.find_comfyui() with its nodes, ours and the test loader; outputs go to workdir."""
    testing_pack = locate.PACK_ROOT / "tests" / "support" / "testing_pack"
    locate.headless.boot(workdir, {"negative_guidance_testing": testing_pack})
