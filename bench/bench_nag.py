"""Cost of attention-space negatives (AttentionNegativeTerm, NAG) at cfg 1, against the same cfg-1 run without a
negative and against the CFG route, measured side by side in one run.

    python bench/bench_nag.py [--model sd15|flux|tiny] [--size 512] [--steps 2] [--rounds 3] [--text 256]

sd15: the random-weight full-size SD1.5 checkpoint (tests/support/random_sd15.py writes it into the cache).
flux: Flux dev at full width (hidden 3072, 24 heads, T5 width 4096) with ``--double`` double and ``--single`` single
blocks, random weights, a ``--text``-token T5 context. Runs in process (no server), on the CPU. Runs are
interleaved round by round and each is timed over a whole sampling run; the table gives the median seconds per
step, the ratio to the cfg-1 run without a negative and the model evaluations per step. Not a test: numbers go into
the README by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import comfy_helpers  # noqa: E402
import harness  # noqa: E402

MAIN = dict(neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant")
NAG = dict(scale=4.0, tau=2.5, alpha=0.25, start=0.0, end=1.0, window_unit="steps", schedule="constant")
REFERENCE = "KSampler, cfg 1, no negative"


def flux_model(double: int, single: int, seed: int = 0):
    """Flux dev's real widths with few blocks, weights from one seeded generator."""
    import tiny
    import torch

    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    class FullWidthFlux(comfy.supported_models.Flux):
        unet_config = {"image_model": "flux", "guidance_embed": True, "in_channels": 16, "out_channels": 16,
                       "vec_in_dim": 768, "context_in_dim": 4096, "hidden_size": 3072, "mlp_ratio": 4.0,
                       "num_heads": 24, "depth": double, "depth_single_blocks": single, "axes_dim": [16, 56, 56],
                       "theta": 10000, "patch_size": 2, "qkv_bias": True}

    config = FullWidthFlux(FullWidthFlux.unet_config)
    device = comfy.model_management.get_torch_device()  # the CPU here (scripts/harness.py boots ComfyUI so)
    config.set_inference_dtype(torch.float32, None)
    base = config.get_model({}, device=torch.device("cpu"))
    tiny.fill_(base.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(base, load_device=device,
                                            offload_device=comfy.model_management.unet_offload_device())


def load(kind: str, size: int, text: int):
    """(MODEL, p, n, n2, latent, noise)."""
    import torch

    import comfy.sample
    import comfy.sd

    if kind == "flux":
        model = flux_model(ARGS.double, ARGS.single)
        g = torch.Generator().manual_seed(1)
        cond = lambda: [[torch.randn(1, text, 4096, generator=g),  # noqa: E731
                         {"pooled_output": torch.randn(1, 768, generator=g), "guidance": 3.5}]]
        latent = torch.zeros(1, 16, size // 8, size // 8)
        p, n, n2 = cond(), cond(), cond()
    else:
        if kind == "tiny":
            import tiny

            model, clip = tiny.tiny_model(), tiny.tiny_clip()
        else:
            path = harness.cache_dir() / "rand_sd15.safetensors"
            model, clip, _, _ = comfy.sd.load_checkpoint_guess_config(str(path))
        encode = lambda t: clip.encode_from_tokens_scheduled(clip.tokenize(t))  # noqa: E731
        p, n, n2 = encode("professional office woman"), encode("glasses"), encode("blurry, watermark")
        latent = torch.zeros(1, 4, size // 8, size // 8)
    return model, p, n, n2, latent, comfy.sample.prepare_noise(latent, 0)


def configurations(model, n, n2):
    """name → (MODEL, cfg, negative)."""
    from comfy_helpers import call_node

    import nodes

    def term(c, terms=None):
        return call_node("AttentionNegativeTerm", conditioning=c, terms=terms, **NAG)[0]

    def patch(terms=None):
        return call_node("NegativeGuidanceCFG", model=model, mode="standard", neg_scale=0.0, terms=terms, **MAIN)[0]

    found = {
        REFERENCE: (model, 1.0, n),
        "NegativeGuidanceCFG (standard), cfg 1, no negative": (patch(), 1.0, n),
        "NegativeGuidanceCFG + 1 AttentionNegativeTerm, cfg 1": (patch(term(n)), 1.0, n),
        "NegativeGuidanceCFG + 2 AttentionNegativeTerms, cfg 1": (patch(term(n2, term(n))), 1.0, n),
        "KSampler, cfg 2 (the CFG route: p and n)": (model, 2.0, n),
    }
    if "NAGuidance" in nodes.NODE_CLASS_MAPPINGS:  # core ComfyUI's NAG (2026): uses the CFG negative chunk
        core = call_node("NAGuidance", model=model, nag_scale=NAG["scale"] + 1, nag_alpha=NAG["alpha"],
                         nag_tau=NAG["tau"])[0]
        found["core NAGuidance, cfg 1"] = (core, 1.0, n)
    return found


def runner(model, cfg, p, negative, noise, latent, steps):
    import comfy.sample

    return lambda: comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", p, negative, latent,
                                       disable_pbar=True, seed=0)


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "sd15", "flux"], default="tiny")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (latent = size / 8)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--text", type=int, default=256, help="flux: T5 tokens of each prompt")
    parser.add_argument("--double", type=int, default=1, help="flux: double-stream blocks")
    parser.add_argument("--single", type=int, default=1, help="flux: single-stream blocks")
    ARGS = parser.parse_args()
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_")))  # on the CPU (scripts/harness.py)
    import torch
    from comfy_helpers import Recorder

    import comfy.model_management
    import nodes

    torch.manual_seed(0)
    model, p, n, n2, latent, noise = load(ARGS.model, ARGS.size, ARGS.text)
    recorder = Recorder()
    recorded = model.clone()
    recorded.set_model_unet_function_wrapper(recorder)
    evaluations = {}
    for name, (m, cfg, negative) in configurations(recorded, n, n2).items():
        before = len(recorder.calls)
        runner(m, cfg, p, negative, noise, latent, ARGS.steps)()
        evaluations[name] = sum(c for _, c, _ in recorder.calls[before:]) / ARGS.steps
    configs = configurations(model, n, n2)
    runs = {name: runner(m, cfg, p, negative, noise, latent, ARGS.steps) for name, (m, cfg, negative) in
            configs.items()}
    for run in runs.values():  # warm-up: load the weights, pick kernels
        run()
    times = {name: [] for name in runs}
    for _ in range(ARGS.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / ARGS.steps)
    device = comfy.model_management.get_torch_device()
    tokens = (latent.shape[-1] // 2) * (latent.shape[-2] // 2) if ARGS.model == "flux" else None
    shape = (f"full width, {ARGS.double} double + {ARGS.single} single blocks, {tokens} image + {ARGS.text} text "
             "tokens, " if ARGS.model == "flux" else "")
    print(f"\n{ARGS.model} ({shape}{ARGS.size}×{ARGS.size}), {ARGS.steps} euler steps, median of {ARGS.rounds} "
          f"rounds, {device}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(f"| configuration | model evaluations / step | s / step | ratio to '{REFERENCE}' |")
    print("|---|---|---|---|")
    reference = statistics.median(times[REFERENCE])
    for name in runs:
        median = statistics.median(times[name])
        print(f"| {name} | {evaluations[name]:.2f} | {median:.4f} | {median / reference:.3f}× |")
    if "NAGuidance" not in nodes.NODE_CLASS_MAPPINGS:
        print("| core NAGuidance | — | — | absent in this ComfyUI (added in 2026, PR #12500) |")


ARGS = None

if __name__ == "__main__":
    main()
