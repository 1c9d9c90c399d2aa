"""Write a deterministic random-weight SD1.5 checkpoint, full size, from ComfyUI's own module classes.

    python tests/support/random_sd15.py OUT.safetensors     # or --dry-run: list the tensors, write nothing

Every run writes the same bytes (sorted keys, one seeded generator). CheckpointLoaderSimple detects it as SD1.5;
its images are coloured noise, which is enough for plumbing, oracle and timing tests. ComfyUI must be importable.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

UNET = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
        "legacy": False, "adm_in_channels": None, "in_channels": 4, "model_channels": 320,
        "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4],
        "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
        "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "use_temporal_attention": False,
        "use_temporal_resblock": False}
VAE = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
       "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def shapes(comfy_root: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape of an SD1.5 checkpoint, read off ComfyUI's modules on the meta device."""
    import torch

    import comfy.ops
    from comfy.clip_model import CLIPTextModel
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    ops = comfy.ops.disable_weight_init
    clip_config = json.loads((comfy_root / "comfy" / "sd1_clip_config.json").read_text(encoding="utf-8"))
    with torch.device("meta"):
        parts = {
            "model.diffusion_model.": UNetModel(**UNET, dtype=torch.float16, device="meta", operations=ops),
            "cond_stage_model.transformer.": CLIPTextModel(clip_config, torch.float16, "meta", ops),
            "first_stage_model.": AutoencoderKL(ddconfig=VAE, embed_dim=4),
        }
    return {prefix + key: tuple(value.shape) for prefix, module in parts.items()
            for key, value in module.state_dict().items() if not key.startswith("text_projection")}


def write(out: Path, comfy_root: Path) -> None:
    import safetensors.torch
    import torch

    generator, state = torch.Generator().manual_seed(0), {}
    for key, shape in sorted(shapes(comfy_root).items()):
        if key.endswith("position_ids"):
            tensor = torch.arange(shape[-1]).reshape(shape)
        elif key.endswith("bias"):
            tensor = torch.zeros(shape)
        elif len(shape) == 1:
            tensor = torch.ones(shape)  # norm scales
        elif "embedding" in key:
            tensor = torch.randn(shape, generator=generator) * 0.02
        else:  # fan-in scaling keeps activations O(1)
            tensor = torch.randn(shape, generator=generator) / math.sqrt(math.prod(shape[1:]))
        state[key] = tensor.half() if tensor.is_floating_point() else tensor
    partial = out.with_suffix(".partial")
    safetensors.torch.save_file(state, str(partial))
    partial.rename(out)


def command(out: Path | str) -> list[str]:
    """The fresh process that writes ``out`` (``"--dry-run"``: that only counts the tensors)."""
    return [sys.executable, str(Path(__file__).resolve()), str(out)]


def ensure(path: Path) -> Path:
    """``path``, written first by a fresh process when it is absent (about 20 s, 2 GB): the server fixture and the
    benches call this."""
    if not path.exists():
        subprocess.run(command(path), check=True)
    return path


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import harness

    root = harness.find_comfyui()
    sys.path.insert(0, str(root))
    from comfy.cli_args import args

    args.cpu = True
    if sys.argv[1] == "--dry-run":
        found = shapes(root)
        print(f"{len(found)} tensors, {sum(math.prod(s) for s in found.values())} parameters")
    else:
        write(Path(sys.argv[1]), root)
