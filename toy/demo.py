"""The offline demo: python -m toy.demo [--out toy_demo] (from the pack root, with ComfyUI's Python).

One graph on the toy concept model, run headless through ComfyUI's executor on the CPU: "a red circle with eyes"
without a negative, with the negative "hat" (eq. 9), and with "hat" from step 5 of 50 (Ban et al.'s delay); a capture
of the undelayed run gives the r_t curve (PNG, JSON, CSV) and word heatmaps. Prints how often each image set shows
a hat, by the pixel-rule detector (on the saved pixel-space latents, over the pictures it calls clean).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import safetensors.torch
import torch

from . import detect
from .headless import Graph, boot, execute, ksampler

POSITIVE, NEGATIVE = "a red circle with eyes", "hat"
STEPS, CFG, BATCH = 50, 3.0, 8
RUNS = {"1_no_negative": None, "2_negative": 0.0, "3_negative_from_step_5": 0.1}


def demo_graph(seed: int) -> dict:
    """The API-format prompt of the demo."""
    g = Graph()
    loader = g.node("ToyConceptModelLoader")
    model, clip, vae = loader, g.out(loader, 1), g.out(loader, 2)
    p, n, u = (g.node("CLIPTextEncode", text=text, clip=clip) for text in (POSITIVE, NEGATIVE, ""))
    latent = g.node("EmptyLatentImage", width=256, height=256, batch_size=BATCH)
    for prefix, start in RUNS.items():
        patched, negative = model, u
        if start is not None:
            patched = g.node("NegativeGuidanceCFG", model=model, mode="standard", neg_scale=CFG - 1, neg_start=start,
                             neg_end=1.0, window_unit="steps", neg_schedule="constant", empty=u)
            negative = n
        if prefix == "2_negative":
            patched = g.node("AttentionCapture", model=patched, clip=clip, positive_text=POSITIVE,
                             negative_text=NEGATIVE, positive_words="", negative_words="", special_tokens=False,
                             max_mb=50.0, over_cap="downsample")
            capture = g.out(patched, 1)
        samples = ksampler(g, patched, p, negative, latent, cfg=CFG, steps=STEPS, seed=seed)
        images = g.node("VAEDecode", samples=samples, vae=vae)
        g.node("SaveImage", images=images, filename_prefix=prefix)
        g.node("SaveLatent", samples=samples, filename_prefix=f"latents/{prefix}")
        if prefix == "2_negative":
            rt = g.node("AttentionRt", capture=capture, samples=samples, score="frobenius", gate_fraction=0.5,
                        related="", filename_prefix="4_r_t", image=images)
            for index, name in ((3, "4_r_t_plot"), (4, "5_heatmaps")):
                g.node("SaveImage", images=g.out(rt, index), filename_prefix=name)
    return g.prompt


def saved_latents(prompt: dict, outputs: dict, folder: Path) -> dict[str, torch.Tensor]:
    """{filename_prefix: the pixel-space latents its SaveLatent wrote in this run, as [N, H, W, 3] images in [0, 1]}."""
    return {prompt[node]["inputs"]["filename_prefix"]: torch.cat([
        safetensors.torch.load_file(folder / item["subfolder"] / item["filename"])["latent_tensor"]
        for item in ui["latents"]]).add(1).div(2).clamp(0, 1).permute(0, 2, 3, 1)
        for node, ui in outputs.items() if "latents" in ui}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("toy_demo"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    out = args.out.resolve()
    boot(Path(tempfile.mkdtemp(prefix="toy_demo_")), output=out)
    prompt = demo_graph(args.seed)
    images = saved_latents(prompt, execute(prompt), out)
    print(f"\n'{POSITIVE}', negative '{NEGATIVE}', {BATCH} images each, {STEPS} steps, cfg {CFG}:")
    for prefix in RUNS:
        found = detect.detect(images[f"latents/{prefix}"])
        clean = [f for f in found if f is not None]
        print(f"  {prefix:<26} a hat in {sum(f['hat'] for f in clean)} of {len(clean)} clean images "
              f"({len(found) - len(clean)} unclean)")
    print(f"wrote {out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
