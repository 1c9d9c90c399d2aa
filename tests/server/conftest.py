"""A live ComfyUI server (CPU) with this pack and the random full-size SD1.5 checkpoint, in a temp base dir."""

from __future__ import annotations

from pathlib import Path

import harness
import live_server
import pytest
import random_sd15

CHECKPOINT = "rand_sd15.safetensors"


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    """The deterministic random SD1.5 checkpoint, generated once into the cache (about 20 s, 2 GB)."""
    return random_sd15.ensure(harness.cache_dir() / CHECKPOINT)


@pytest.fixture(scope="session")
def server(tmp_path_factory, checkpoint):
    yield from live_server.serve(live_server.make_base(tmp_path_factory.mktemp("comfy_base"), {CHECKPOINT: checkpoint}))
