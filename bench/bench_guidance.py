"""Per-step cost of negative guidance against ComfyUI's own guiders, measured side by side in one run.

    python bench/bench_guidance.py [--model tiny|sd15|sd35|flux] [--size 256] [--steps 4] [--rounds 3]
                                   [--device cpu|cuda] [--dtype fp32|bf16|fp16]

Runs on the CPU in process (no server). Configurations are interleaved round by round and each is timed over a
whole sampling run; the table gives the median seconds per step, the ratio to its reference measured in the same
run, and the model evaluations (conds) per step. Not a test: numbers go into the README by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts"), str(ROOT / "bench")]

import bench_models as models  # noqa: E402
import comfy_helpers  # noqa: E402

RECORDER = None  # set in main(): comfy_helpers needs ComfyUI booted
MAIN = dict(neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant")
CFG, NEG_SCALE = 7.0, 3.0


def configurations(model, p, n, u):
    """name → (reference names, GUIDER or (patched MODEL, negative) for the KSampler path)."""
    from comfy_helpers import call_node

    def ours(**inputs):
        settings = dict(mode="independent", cfg=CFG, neg_scale=NEG_SCALE, **MAIN) | inputs
        return call_node("NegativeGuidanceGuider", model=model, positive=p, negative=n, empty=u, **settings)[0]

    patch = call_node("NegativeGuidanceCFG", model=model, empty=u, mode="standard", neg_scale=0.0, **MAIN)[0]
    return {
        "CFGGuider (p, n)": ((), call_node("CFGGuider", model=model, positive=p, negative=n, cfg=CFG)[0]),
        "NegativeGuidanceGuider, standard (eq. 9)": (("CFGGuider (p, n)",), ours(mode="standard")),
        "KSampler (p, n)": ((), (model, n)),
        "NegativeGuidanceCFG, standard + KSampler": (("KSampler (p, n)",), (patch, n)),
        "DualCFGGuider (p, u, n)": ((), call_node("DualCFGGuider", model=model, cond1=p, cond2=u, negative=n,
                                                  cfg_conds=CFG, cfg_cond2_negative=NEG_SCALE + 1,
                                                  style="regular")[0]),
        "PerpNegGuider (p, n, u)": ((), call_node("PerpNegGuider", model=model, positive=p, negative=n,
                                                  empty_conditioning=u, cfg=CFG, neg_scale=1.0)[0]),
        "NegativeGuidanceGuider, eq. 8": (("DualCFGGuider (p, u, n)", "PerpNegGuider (p, n, u)"), ours()),
        "NegativeGuidanceGuider, eq. 8, negative from 30%": (("DualCFGGuider (p, u, n)", "PerpNegGuider (p, n, u)"),
                                                             ours(neg_start=0.3)),
    }


def selected(configs: dict, words: list[str]) -> dict:
    """The configurations whose name contains one of ``words``, with their references (all when no words)."""
    chosen = {name for name in configs if not words or any(word in name for word in words)}
    chosen |= {reference for name in chosen for reference in configs[name][0]}
    return {name: value for name, value in configs.items() if name in chosen}


def runner(how, p, noise, latent, steps):
    """A function that samples once with ``how`` (a GUIDER, or a (model, negative) pair for KSampler)."""
    import comfy.sample
    import comfy.samplers

    if isinstance(how, tuple):
        model, negative = how
        return lambda: comfy.sample.sample(model, noise, steps, CFG, "euler", "normal", p, negative, latent,
                                           disable_pbar=True, seed=0)
    sigmas = comfy.samplers.calculate_sigmas(how.model_patcher.get_model_object("model_sampling"), "normal", steps)
    sampler = comfy.samplers.sampler_object("euler")
    return lambda: how.sample(noise, latent, sampler, sigmas, disable_pbar=True, seed=0)


def evaluations_per_step(how, p, noise, latent, steps) -> float:
    """Mean conds per model call, as recorded by a unet wrapper on the model."""
    run = runner(how, p, noise, latent, steps)
    run()
    return statistics.mean(RECORDER.conds_per_call()[-steps:])


def load(kind: str, size: int, dtype: str, device: str):
    """The model, the conds p, n and u, the latent and the noise."""
    model, clip, latent, noise = models.load(kind, size, dtype, device)
    encode = lambda text: clip.encode_from_tokens_scheduled(clip.tokenize(text))  # noqa: E731
    return model, (encode("professional office woman"), encode("glasses"), encode("")), latent, noise


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models.add_arguments(parser, size=256, steps=10, rounds=5)
    parser.add_argument("--only", nargs="*", default=[], help="time only the configurations that contain one of "
                        "these words (their references are kept)")
    args = parser.parse_args()
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_")), cpu=args.device == "cpu")
    import torch
    from comfy_helpers import Recorder

    global RECORDER
    RECORDER = Recorder()
    torch.manual_seed(0)
    model, (p, n, u), latent, noise = load(args.model, args.size, args.dtype, args.device)
    recorded = model.clone()
    recorded.set_model_unet_function_wrapper(RECORDER)
    counts = {name: evaluations_per_step(how, p, noise, latent, args.steps)
              for name, (_, how) in selected(configurations(recorded, p, n, u), args.only).items()}
    configs = selected(configurations(model, p, n, u), args.only)
    runs = {name: runner(how, p, noise, latent, args.steps) for name, (_, how) in configs.items()}
    times = models.interleaved(runs, args.rounds, args.steps)
    print(f"\n{args.model}, {args.size}×{args.size}, {args.steps} euler steps, median of {args.rounds} rounds, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| configuration | evaluations / step | s / step | ratio to the reference in the same run |")
    print("|---|---|---|---|")
    for name, (references, _) in configs.items():
        median = statistics.median(times[name])
        ratios = ", ".join(f"{median / statistics.median(times[r]):.3f}× {r}" for r in references)
        print(f"| {name} | {counts[name]:.2f} | {median:.4f} | {ratios} |")


if __name__ == "__main__":
    main()
