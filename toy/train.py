"""Train the toy concept model on CPU, reproducibly: PYTHONPATH=$COMFYUI_PATH python -m toy.train (from the pack root).

The loss is the denoising error in x₀ space under min-SNR-γ weighting (Hang et al. 2023, arXiv 2303.09556),

    L = E_{x₀, c, t, ε} [ min(SNR_t, γ) · ‖x̂₀(x₀ + σ_t·ε, σ_t, c) − x₀‖² ],   SNR_t = 1 / σ_t²,

where x̂₀ is ComfyUI's own ``calculate_denoised`` of the network output, so one formula trains either
parametrisation: for v-prediction (Salimans & Ho 2022) it is the v-loss weighted min(SNR, γ) / (SNR + 1), for
ε-prediction (Ho et al. 2020) the ε-loss weighted min(SNR, γ) / SNR. t is uniform over SD1's 1000 discrete steps;
10% of captions are empty for classifier-free guidance (Ho & Salimans 2022). The UNet runs under bfloat16 autocast
(fp32 master weights), which is 1.6× faster on this CPU.

The text encoder trains with the UNet unless ``--frozen-text``: ComfyUI's CLIP layers add their residuals in place,
which autograd cannot differentiate, so ``text_context`` computes the same function from the same parameters
functionally (a test checks it against ComfyUI's CLIPTextEncode), and the trained weights load back into
ComfyUI's class. The saved weights of both networks are exponential moving averages.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import comfy.cli_args

comfy.cli_args.args.cpu = True  # before ComfyUI's model management loads: training runs on the CPU

import comfy.sd1_clip  # noqa: E402

from . import data  # noqa: E402
from .model import PREDICTIONS, WEIGHTS, ToyClip, new_unet, save  # noqa: E402

INITIALISED = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.GroupNorm, torch.nn.LayerNorm, torch.nn.Embedding)


def init_(module: torch.nn.Module) -> None:
    """PyTorch's default initialisation on every layer (ComfyUI's ops skip it), from the global seed."""
    for layer in module.modules():
        for kind in INITIALISED:
            if isinstance(layer, kind):
                kind.reset_parameters(layer)
                break


def tokens(tokenizer: comfy.sd1_clip.SD1Tokenizer, text: str) -> list[int]:
    """The 77 token ids CLIPTextEncode feeds the text encoder for ``text`` (all weights 1)."""
    return [token for token, _weight in tokenizer.tokenize_with_weights(text)["l"][0]]


def text_context(text_encoder: ToyClip, ids: torch.Tensor) -> torch.Tensor:
    """[B, 77, 64] context of token ids [B, 77]: the causal CLIP transformer (pre-norm layers x + attn(LN x),
    x + mlp(LN x), quick-GELU MLP, final LayerNorm, Radford et al. 2021) written out-of-place over the parameters
    of ComfyUI's CLIPTextModel_, so that autograd can train them."""
    model = text_encoder.clip_l.transformer.text_model
    x = F.embedding(ids, model.embeddings.token_embedding.weight) + model.embeddings.position_embedding.weight
    for layer in model.encoder.layers:
        h = F.layer_norm(x, x.shape[-1:], layer.layer_norm1.weight, layer.layer_norm1.bias, layer.layer_norm1.eps)
        attn = layer.self_attn
        q, k, v = (F.linear(h, p.weight, p.bias).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
                   for p in (attn.q_proj, attn.k_proj, attn.v_proj))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(-2)
        x = x + F.linear(out, attn.out_proj.weight, attn.out_proj.bias)
        h = F.layer_norm(x, x.shape[-1:], layer.layer_norm2.weight, layer.layer_norm2.bias, layer.layer_norm2.eps)
        h = F.linear(h, layer.mlp.fc1.weight, layer.mlp.fc1.bias)
        x = x + F.linear(h * torch.sigmoid(1.702 * h), layer.mlp.fc2.weight, layer.mlp.fc2.bias)
    norm = model.final_layer_norm
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def learning_rate(step: int, steps: int, peak: float, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def min_snr_loss(sampling, output: torch.Tensor, noisy: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor,
                 gamma: float) -> torch.Tensor:
    """mean_b min(1/σ_b², γ) · mean_pixels (x̂₀ − x₀)², x̂₀ from ComfyUI's calculate_denoised of the output."""
    denoised = sampling.calculate_denoised(sigma, output.float(), noisy)
    weight = torch.clamp(sigma.pow(-2), max=gamma)
    return (weight * (denoised - x0).pow(2).mean(dim=(1, 2, 3))).mean()


def train(steps: int, batch_size: int, pool: int, lr: float, ema_decay: float, out: Path, seed: int,
          prediction: str = "v", gamma: float = 5.0, train_text: bool = True, save_every: int = 1000,
          stop_after: int | None = None) -> None:
    """Everything from ``seed``; the EMA of both networks is written to ``out`` every ``save_every`` steps.

    ``stop_after`` ends the run after that step while the learning-rate schedule still spans ``steps``: the shipped
    weights are the EMA written at step 5000 of the 6000-step schedule (``--stop-after 5000``).
    """
    torch.manual_seed(seed)
    unet_model = new_unet(prediction)
    unet, sampling = unet_model.diffusion_model, unet_model.model_sampling
    text = ToyClip()
    init_(unet)
    init_(text)
    unet.train()
    text.requires_grad_(train_text)
    networks = {"unet": unet, "text": text}
    ema = {name: {k: v.detach().clone() for k, v in net.state_dict().items()} for name, net in networks.items()}
    params = [*unet.parameters(), *(text.parameters() if train_text else [])]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    tokenizer = comfy.sd1_clip.SD1Tokenizer()
    ids: dict[str, list[int]] = {}

    pool_scenes = data.scenes(seed, pool)
    pool_images = torch.from_numpy(data.images(pool_scenes)).permute(0, 3, 1, 2) * 2 - 1
    rng = np.random.default_rng(seed + 1)
    started, running = time.time(), 0.0
    last = stop_after or steps
    for step in range(last):
        picks = rng.integers(0, pool, batch_size)
        captions = [data.random_caption(pool_scenes[i], rng) for i in picks]
        for c in set(captions) - ids.keys():
            ids[c] = tokens(tokenizer, c)
        x0 = pool_images[torch.from_numpy(picks)]
        sigma = sampling.sigmas[torch.from_numpy(rng.integers(0, len(sampling.sigmas), batch_size))]
        noisy = x0 + sigma.view(-1, 1, 1, 1) * torch.randn_like(x0)
        with torch.set_grad_enabled(train_text):
            context = text_context(text, torch.tensor([ids[c] for c in captions]))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = unet(sampling.calculate_input(sigma, noisy), sampling.timestep(sigma).float(), context=context)
        loss = min_snr_loss(sampling, output, noisy, x0, sigma, gamma)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, steps, lr)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        decay = min(ema_decay, (1 + step) / (10 + step))  # warm-up: early averages forget the random start
        with torch.no_grad():
            for name, net in networks.items():
                for k, v in net.state_dict().items():
                    ema[name][k].lerp_(v, 1 - decay)
        running = loss.item() if step == 0 else 0.98 * running + 0.02 * loss.item()
        if (step + 1) % 100 == 0 or step + 1 == last:
            elapsed = time.time() - started
            print(f"step {step + 1}/{steps}  loss {running:.4f}  {elapsed:.0f} s  {elapsed / (step + 1):.3f} s/step",
                  flush=True)
        if (step + 1) % save_every == 0 or step + 1 == last:
            averaged_unet, averaged_text = new_unet(prediction).diffusion_model, ToyClip()
            averaged_unet.load_state_dict(ema["unet"])
            averaged_text.load_state_dict(ema["text"])
            save(averaged_unet, averaged_text, out, prediction)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pool", type=int, default=30000, help="rendered pictures to draw batches from")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--prediction", choices=sorted(PREDICTIONS), default="v")
    parser.add_argument("--gamma", type=float, default=5.0, help="min-SNR-γ clamp of the x₀-loss weight")
    parser.add_argument("--frozen-text", action="store_true", help="keep the text encoder at its random init")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; on a 2-core machine shared with other "
                        "jobs one thread ran 2× faster than two, whose OpenMP workers wait on each other")
    parser.add_argument("--stop-after", type=int, default=5000, help="end after this step (its EMA is written); "
                        "the learning-rate schedule still spans --steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train(args.steps, args.batch_size, args.pool, args.lr, args.ema, args.out, args.seed, args.prediction,
          args.gamma, not args.frozen_text, stop_after=args.stop_after)


if __name__ == "__main__":
    main()
