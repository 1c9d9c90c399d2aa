"""A live ComfyUI server (CPU, main.py) on a temp base dir, and HTTP access to it: the server and browser tiers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import harness

TESTING_PACK = harness.PACK_ROOT / "tests" / "support" / "testing_pack"


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

    def submit(self, prompt: dict) -> str:
        import requests

        reply = requests.post(self.url + "/prompt", json={"prompt": prompt, "client_id": str(uuid.uuid4())},
                              timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id]["status"].get("completed") is not None:
                return history[prompt_id]
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")

    def run(self, prompt: dict, timeout: float = 300) -> dict:
        return self.wait(self.submit(prompt), timeout)

    def interrupt(self) -> None:
        import requests

        requests.post(self.url + "/interrupt", timeout=30)

    def running(self) -> bool:
        return bool(self.get("/queue")["queue_running"])

    def latent(self, entry: dict, node_id: str):
        import safetensors.torch

        item = entry["outputs"][node_id]["latents"][0]
        return safetensors.torch.load_file(self.base / "output" / item["subfolder"] / item["filename"])[
            "latent_tensor"
        ]


def make_base(base: Path, checkpoints: dict[str, Path] | None = None) -> Path:
    """A base dir whose custom_nodes hold this pack and the test-only tiny loader, and whose checkpoints are links."""
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / "comfyui-negative-guidance").symlink_to(harness.PACK_ROOT)
    (base / "custom_nodes" / "negative_guidance_testing").symlink_to(TESTING_PACK)
    (base / "models" / "checkpoints").mkdir(parents=True)
    for name, path in (checkpoints or {}).items():
        (base / "models" / "checkpoints" / name).symlink_to(path)
    return base


def serve(base: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> Iterator[Server]:
    """Start main.py on the base dir with ``extra`` arguments (log in base/server.log), wait for /object_info, yield a
    Server, stop it."""
    port = port or free_port()
    support = [harness.PACK_ROOT / "tests" / "support", harness.PACK_ROOT / "scripts"]  # the test pack's imports
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(map(str, support))}
    with open(base / "server.log", "a", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory",
             str(base), "--disable-auto-launch", *extra],
            cwd=harness.find_comfyui(), stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    server = Server(f"http://127.0.0.1:{port}", base)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (base / "server.log").read_text(encoding="utf-8")[-3000:]
            try:
                server.get("/object_info/KSampler")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)
        server.process = process
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
