"""A live ComfyUI server (CPU) with this pack and the random full-size SD1.5 checkpoint, in a temp base dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import locate
import pytest

CHECKPOINT = "rand_sd15.safetensors"


@pytest.fixture(scope="session")
def checkpoint() -> Path:
    """The deterministic random SD1.5 checkpoint, generated once into the cache (about 20 s, 2 GB)."""
    path = locate.cache_dir() / CHECKPOINT
    if not path.exists():
        script = locate.PACK_ROOT / "tests" / "support" / "random_sd15.py"
        subprocess.run([sys.executable, str(script), str(path)], check=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """HTTP access to the server: queue API-format prompts and wait for their history."""

    def __init__(self, url: str, base: Path):
        self.url, self.base = url, base

    def get(self, path: str):
        import requests

        return requests.get(self.url + path, timeout=30).json()

    def run(self, prompt: dict, timeout: float = 300) -> dict:
        import requests

        reply = requests.post(self.url + "/prompt", json={"prompt": prompt, "client_id": str(uuid.uuid4())},
                              timeout=30)
        assert reply.status_code == 200, reply.text
        prompt_id = reply.json()["prompt_id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id]["status"].get("completed") is not None:
                return history[prompt_id]
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")

    def latent(self, entry: dict, node_id: str):
        import safetensors.torch

        item = entry["outputs"][node_id]["latents"][0]
        return safetensors.torch.load_file(self.base / "output" / item["subfolder"] / item["filename"])[
            "latent_tensor"
        ]


@pytest.fixture(scope="session")
def server(tmp_path_factory, checkpoint):
    base = tmp_path_factory.mktemp("comfy_base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "comfyui-negative-guidance").symlink_to(locate.PACK_ROOT)
    (base / "models" / "checkpoints").mkdir(parents=True)
    (base / "models" / "checkpoints" / CHECKPOINT).symlink_to(checkpoint)
    port = free_port()
    with open(base / "server.log", "w") as log:
        yield from serve(base, port, log)


def serve(base: Path, port: int, log):
    """Start main.py on the base dir, wait for /object_info, yield a Server, stop it."""
    process = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory",
         str(base), "--disable-auto-launch"],
        cwd=locate.find_comfyui(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = Server(f"http://127.0.0.1:{port}", base)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (base / "server.log").read_text()[-3000:]
            try:
                server.get("/object_info/KSampler")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
