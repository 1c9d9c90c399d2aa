"""The models the benchmarks time: tiny ones, the random full-size SD1.5 checkpoint, and random DiTs at full width
with few blocks (SD3.5 medium's width 1536 with 4 joint blocks; Flux's width 3072 with 1 double and 1 single block;
Wan 2.1 1.3B's width 1536 with 2 blocks, on a video latent), on any device and dtype. ComfyUI must be booted
(comfy_helpers.boot) before ``load``."""

from __future__ import annotations

import harness

KINDS = ("tiny", "sd15", "sd35", "flux", "wan")
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
SD35_WIDTH = {"depth": 24, "num_blocks": 4, "adm_in_channels": 2048, "num_patches": 36864, "pos_embed_max_size": 192,
              "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": 4096,
                                                                                  "out_features": 1536}}}
FLUX_WIDTH = {"hidden_size": 3072, "num_heads": 24, "depth": 1, "depth_single_blocks": 1, "axes_dim": [16, 56, 56]}
WAN_WIDTH = {"dim": 1536, "num_heads": 12, "ffn_dim": 8960, "num_layers": 2}  # Wan 2.1 1.3B's blocks


def add_arguments(parser, size: int, steps: int, rounds: int) -> None:
    """The options every timing bench takes: the model, its device and dtype, the image size, steps and rounds."""
    parser.add_argument("--model", choices=KINDS, default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=list(DTYPES), default="fp32")
    parser.add_argument("--size", type=int, default=size, help="image side in pixels (latent = size / 8)")
    parser.add_argument("--frames", type=int, default=17, help="video frames, for --model wan (latent: 1 + (f − 1)/4)")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--rounds", type=int, default=rounds)


def interleaved(runs: dict, rounds: int, steps: int) -> dict[str, list[float]]:
    """Seconds per step of each run in ``runs`` (name → a whole sampling run), timed round by round, interleaved."""
    import time

    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def paired_ratio(times: dict[str, list[float]], name: str, reference: str) -> float:
    """The median over rounds of ``name``'s time over ``reference``'s in the same round: a slow stretch of a shared
    machine slows both runs of a round alike, so the ratio keeps what the configuration costs."""
    import statistics

    return statistics.median(t / r for t, r in zip(times[name], times[reference], strict=True))


def dit(family: str, changes: dict, dtype, device):
    """A random DiT of ``family`` with its tiny config changed by ``changes`` (full width), weights from one seed."""
    import tiny
    import tiny_families

    import comfy.model_patcher

    base = tiny_families.FAMILIES[family].config
    config_class = type(f"Wide{base.__name__}", (base,), {"unet_config": base.unet_config | changes})
    config = config_class(config_class.unet_config)
    config.set_inference_dtype(dtype, None)
    model = config.get_model({}, device=device)
    tiny.fill_(model.diffusion_model, 0)
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=device)


def load(kind: str, size: int, dtype_name: str = "fp32", device_name: str = "cpu", frames: int = 17):
    """(MODEL, CLIP, empty latent, noise) for a ``size``² image (Wan: a video of ``frames`` frames)."""
    import tiny_families
    import torch

    import comfy.sample
    import comfy.sd

    dtype, device = getattr(torch, DTYPES[dtype_name]), torch.device(device_name)
    if kind == "tiny":
        import tiny

        model, clip = tiny.tiny_model(dtype=dtype), tiny.tiny_clip()
        channels = 4
    elif kind == "sd15":
        import random_sd15

        path = random_sd15.ensure(harness.cache_dir() / "rand_sd15.safetensors")
        options = {} if dtype_name == "fp32" else {"dtype": dtype}
        model, clip, _, _ = comfy.sd.load_checkpoint_guess_config(str(path), model_options=options)
        channels = 4
    else:
        family = {"sd35": "sd3", "flux": "flux", "wan": "wan21"}[kind]
        width = {"sd35": SD35_WIDTH | {"x_block_self_attn_layers": [0]}, "flux": FLUX_WIDTH, "wan": WAN_WIDTH}[kind]
        model, clip, channels = dit(family, width, dtype, device), tiny_families.clip(family), 16
    video = (1 + (frames - 1) // 4,) if kind == "wan" else ()
    latent = torch.zeros(1, channels, *video, size // 8, size // 8)
    return model, clip, latent, comfy.sample.prepare_noise(latent, 0)
