"""What a cold machine builds: the random SD1.5 checkpoint comes from tests/support/random_sd15.py in a fresh
process, started as the server fixture and the benches start it (random_sd15.command), from any folder."""

import os
import subprocess

import random_sd15


def test_the_checkpoint_builder_runs_in_a_fresh_process_as_the_fixture_starts_it(comfy, tmp_path):
    """--dry-run reads every tensor shape off ComfyUI's own SD1.5 modules, as the build does, and writes nothing:
    SD1.5's 1130 tensors and 1,066,235,307 parameters (UNet, CLIP-L, VAE; text_projection left out)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(random_sd15.command("--dry-run"), cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "1130 tensors, 1066235307 parameters"
    assert list(tmp_path.iterdir()) == []
