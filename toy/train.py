"""Train the toy concept model on CPU, reproducibly: PYTHONPATH=$COMFYUI_PATH python -m toy.train (from the pack root).

ε-prediction loss on SD1's discrete schedule (Ho et al. 2020), with 10% of captions dropped to "" for
classifier-free guidance (Ho & Salimans 2022). The text encoder stays at its seeded random initialisation (a fixed
random feature map of the caption; ComfyUI's CLIP adds its residuals in place, which autograd cannot train
through); the UNet's cross-attention learns to read it. The saved UNet weights are an exponential moving average.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

import comfy.cli_args

comfy.cli_args.args.cpu = True  # before ComfyUI's model management loads: training runs on the CPU

import comfy.sd1_clip  # noqa: E402

from . import data  # noqa: E402
from .model import WEIGHTS, ToyClip, new_unet, save  # noqa: E402

INITIALISED = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.Embedding)


def init_(module: torch.nn.Module) -> None:
    """PyTorch's default initialisation on every layer (ComfyUI's ops skip it), from the global seed."""
    for layer in module.modules():
        for kind in INITIALISED:
            if isinstance(layer, kind):
                kind.reset_parameters(layer)
                break


def encode(text_encoder: ToyClip, tokenizer, text: str) -> torch.Tensor:
    """The [77, 64] context ComfyUI's CLIPTextEncode gives for ``text`` (all weights 1)."""
    with torch.no_grad():
        return text_encoder.clip_l([[token for token, _weight in tokenizer.tokenize_with_weights(text)["l"][0]]])[0][0]


def learning_rate(step: int, steps: int, peak: float, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train(steps: int, batch_size: int, pool: int, lr: float, ema_decay: float, out: Path, seed: int) -> None:
    """Everything from ``seed``; the UNet's EMA and the text encoder are written to ``out`` every 500 steps."""
    torch.manual_seed(seed)
    unet_model = new_unet()
    unet, sampling = unet_model.diffusion_model, unet_model.model_sampling
    text = ToyClip()
    init_(unet)
    init_(text)
    unet.train()
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    optimiser = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    tokenizer = comfy.sd1_clip.SD1Tokenizer()
    contexts: dict[str, torch.Tensor] = {}

    pool_scenes = data.scenes(seed, pool)
    pool_images = torch.from_numpy(data.images(pool_scenes)).permute(0, 3, 1, 2) * 2 - 1
    rng = np.random.default_rng(seed + 1)
    started, running = time.time(), 0.0
    for step in range(steps):
        picks = rng.integers(0, pool, batch_size)
        captions = [data.random_caption(pool_scenes[i], rng) for i in picks]
        for c in set(captions) - contexts.keys():
            contexts[c] = encode(text, tokenizer, c)
        context = torch.stack([contexts[c] for c in captions])
        x0 = pool_images[torch.from_numpy(picks)]
        sigma = sampling.sigmas[torch.from_numpy(rng.integers(0, len(sampling.sigmas), batch_size))]
        noise = torch.randn_like(x0)
        noisy = x0 + sigma.view(-1, 1, 1, 1) * noise
        predicted = unet(sampling.calculate_input(sigma, noisy), sampling.timestep(sigma).float(), context=context)
        loss = torch.nn.functional.mse_loss(predicted, noise)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, steps, lr)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimiser.step()
        decay = min(ema_decay, (1 + step) / (10 + step))  # warm-up: early averages forget the random start
        with torch.no_grad():
            for k, v in unet.state_dict().items():
                ema[k].lerp_(v, 1 - decay)
        running = loss.item() if step == 0 else 0.98 * running + 0.02 * loss.item()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            print(f"step {step + 1}/{steps}  loss {running:.4f}  {time.time() - started:.0f} s", flush=True)
        if (step + 1) % 500 == 0 or step + 1 == steps:
            averaged = new_unet().diffusion_model
            averaged.load_state_dict(ema)
            save(averaged, text, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pool", type=int, default=20000, help="generated images to draw batches from")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train(args.steps, args.batch_size, args.pool, args.lr, args.ema, args.out, args.seed)


if __name__ == "__main__":
    main()
