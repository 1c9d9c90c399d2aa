"""The offline demo: bash scripts/demo.sh [--out toy_demo] (the environment of the tests; this file is its Python).

One graph on the toy concept model, run headless through ComfyUI's executor on the CPU: "a red circle with eyes"
without a negative, with the negative "hat" (eq. 9), and with "hat" from step 5 of 50 (Ban et al.'s delay); a capture
of the undelayed run gives the r_t curve (PNG, JSON, CSV) and word heatmaps. Prints how often each image set shows
a hat, by the pixel-rule detector (on the saved pixel-space latents, over the pictures it calls clean).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
from pathlib import Path

import harness
from harness import Graph, ksampler

POSITIVE, NEGATIVE = "a red circle with eyes", "hat"
STEPS, CFG, BATCH = 50, 3.0, 8
RUNS = {"1_no_negative": None, "2_negative": 0.0, "3_negative_from_step_5": 0.1}


def demo_graph(seed: int) -> dict:
    """The API-format prompt of the demo: three runs of the toy model, the second one captured and analysed."""
    g = Graph()
    loader = g.node("ToyConceptModelLoader")
    model, clip, vae = loader, g.out(loader, 1), g.out(loader, 2)
    capture = g.node("AttentionCapture", model=model, clip=clip, positive_text=POSITIVE, negative_text=NEGATIVE,
                     positive_words="", negative_words="", special_tokens=False, max_mb=50.0, over_cap="downsample")
    p, n = g.out(capture, 2), g.out(capture, 3)
    latent = g.node("EmptyLatentImage", width=256, height=256, batch_size=BATCH)
    for prefix, start in RUNS.items():
        base = capture if prefix == "2_negative" else model
        patched = base
        if start is not None:
            patched = g.node("NegativeGuidanceCFG", model=base, clip=clip, mode="standard", neg_scale=CFG - 1,
                             neg_start=start, neg_end=1.0, window_unit="steps", neg_schedule="constant")
        samples = ksampler(g, patched, p, n if start is not None else g.node("CLIPTextEncode", text="", clip=clip),
                           latent, cfg=CFG, steps=STEPS, seed=seed)
        images = g.node("VAEDecode", samples=samples, vae=vae)
        g.node("SaveImage", images=images, filename_prefix=prefix)
        g.node("SaveLatent", samples=samples, filename_prefix=f"latents/{prefix}")
        if prefix == "2_negative":
            rt = g.node("AttentionRt", capture=g.out(capture, 1), samples=samples, score="frobenius",
                        gate_fraction=0.5, related="", filename_prefix="4_r_t", image=images)
            for index, name in ((3, "4_r_t_plot"), (4, "5_heatmaps"), (6, "6_overlays")):
                g.node("SaveImage", images=g.out(rt, index), filename_prefix=name)
    return g.prompt


def saved_images(prompt: dict, outputs: dict, folder: Path) -> dict:
    """{filename_prefix: the pixel-space latents its SaveLatent wrote in this run, as [N, H, W, 3] images in [0, 1]}."""
    import safetensors.torch
    import torch

    return {prompt[node]["inputs"]["filename_prefix"]: torch.cat([
        safetensors.torch.load_file(folder / item["subfolder"] / item["filename"])["latent_tensor"]
        for item in ui["latents"]]).add(1).div(2).clamp(0, 1).permute(0, 2, 3, 1)
        for node, ui in outputs.items() if "latents" in ui}


class Progress:
    """One line that ComfyUI's progress hook keeps up to date: which sampler run, and its step."""

    def __init__(self, runs: int):
        self.runs, self.nodes = runs, []

    def __call__(self, value, total, preview=None, node_id=None):
        if node_id not in self.nodes:
            self.nodes.append(node_id)
        run = min(len(self.nodes), self.runs)
        print(f"\r  sampling run {run}/{self.runs}, step {value}/{total}   ", end="", flush=True)


@contextlib.contextmanager
def quiet():
    """ComfyUI's import warnings and tqdm bars off; the pack's story stays."""
    logging.disable(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        yield
    logging.disable(logging.NOTSET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("toy_demo"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started, out = time.perf_counter(), args.out.resolve()
    print(f"Toy demo: '{POSITIVE}', {BATCH} images per run, {STEPS} steps, cfg {CFG}, seed {args.seed}: no negative; "
          f"the negative '{NEGATIVE}' (eq. 9); '{NEGATIVE}' from step 5 (Ban et al.'s delay). The second run is "
          "captured for r_t.")
    with tempfile.TemporaryDirectory(prefix="toy_demo_") as work:
        with quiet():
            harness.boot(Path(work), output=out)
            import comfy.utils

            comfy.utils.PROGRESS_BAR_ENABLED = False
        comfy.utils.set_progress_bar_global_hook(Progress(len(RUNS)))
        prompt = demo_graph(args.seed)
        with quiet():
            outputs = harness.execute(prompt)
        comfy.utils.set_progress_bar_global_hook(None)
    detect = harness.module("toy.detect")
    images = saved_images(prompt, outputs, out)
    print("\r" + " " * 60 + "\r" + f"How often the {BATCH} images show a {NEGATIVE} (pixel-rule detector):")
    for prefix in RUNS:
        votes = [detect.present(found, NEGATIVE) for found in detect.detect(images[f"latents/{prefix}"])]
        clean = [vote for vote in votes if vote is not None]
        print(f"  {prefix:<26} a {NEGATIVE} in {sum(clean)} of {len(clean)} clean images "
              f"({len(votes) - len(clean)} unclean)")
    rt = next(ui for ui in outputs.values() if "negative_guidance_rt" in ui)
    print(f"r_t of the second run: {rt['text'][0]}")
    print(f"Pictures, r_t plot, heatmaps and the r_t JSON/CSV/safetensors are in {out} "
          f"({time.perf_counter() - started:.0f} s).")


if __name__ == "__main__":
    sys.exit(main())
