"""Cost of attention-space negatives (AttentionNegativeTerm, NAG) at cfg 1, against the same cfg-1 run without a
negative and against the CFG route, measured side by side in one run.

    python bench/bench_nag.py [--model tiny|sd15|sd35|flux|wan] [--size 512] [--frames 17] [--steps 2]
                              [--rounds 3] [--device cuda --dtype bf16]

The models are bench/bench_models.py's: the random-weight full-size SD1.5 checkpoint, and random DiTs at full width
with few blocks (SD3.5 medium's 1536, Flux's 3072). Runs in process (no server). Runs are interleaved round by round
and each is timed over a whole sampling run. The table gives the median seconds per step, the model evaluations per
step, and the ratio to the cfg-1 run without a negative twice: the median over rounds of the two runs' ratio in each
round, and the ratio of their fastest rounds (a shared machine's noise only adds time). Not a test: numbers go into
the README by hand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import bench_models as models  # noqa: E402
import comfy_helpers  # noqa: E402

MAIN = dict(neg_start=0.0, neg_end=1.0, window_unit="steps", neg_schedule="constant")
NAG = dict(scale=4.0, tau=2.5, alpha=0.25, start=0.0, end=1.0, window_unit="steps", schedule="constant")
REFERENCE = "KSampler, cfg 1, no negative"


def load(kind: str, size: int, dtype: str, device: str, frames: int):
    """(MODEL, p, n, n2, latent, noise) on bench_models' model of ``kind``."""
    model, clip, latent, noise = models.load(kind, size, dtype, device, frames)
    encode = lambda t: clip.encode_from_tokens_scheduled(clip.tokenize(t))  # noqa: E731
    p, n, n2 = encode("professional office woman"), encode("glasses"), encode("blurry, watermark")
    if kind == "flux":
        p = [[c, {**extra, "guidance": 3.5}] for c, extra in p]
    return model, p, n, n2, latent, noise


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models.add_arguments(parser, size=512, steps=2, rounds=3)
    args = parser.parse_args()
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_")), cpu=args.device == "cpu")
    import torch
    from comfy_helpers import Recorder

    import nodes

    torch.manual_seed(0)
    model, p, n, n2, latent, noise = load(args.model, args.size, args.dtype, args.device, args.frames)
    recorder = Recorder()
    recorded = model.clone()
    recorded.set_model_unet_function_wrapper(recorder)
    evaluations = {}
    for name, (m, cfg, negative) in configurations(recorded, n, n2).items():
        before = len(recorder.calls)
        runner(m, cfg, p, negative, noise, latent, args.steps)()
        evaluations[name] = sum(c for _, c, _ in recorder.calls[before:]) / args.steps
    configs = configurations(model, n, n2)
    runs = {name: runner(m, cfg, p, negative, noise, latent, args.steps) for name, (m, cfg, negative) in
            configs.items()}
    for run in runs.values():  # warm-up: load the weights, pick kernels
        run()
    times = models.interleaved(runs, args.rounds, args.steps)
    video = f", {args.frames} frames" if args.model == "wan" else ""
    print(f"\n{args.model} ({args.size}×{args.size}{video}, {args.dtype}), {args.steps} euler steps, median of "
          f"{args.rounds} rounds, {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(f"| configuration | model evaluations / step | s / step | ratio to '{REFERENCE}' | fastest rounds' ratio |")
    print("|---|---|---|---|---|")
    for name in runs:
        ratio, fastest = models.paired_ratio(times, name, REFERENCE), min(times[name]) / min(times[REFERENCE])
        print(f"| {name} | {evaluations[name]:.2f} | {statistics.median(times[name]):.4f} | {ratio:.3f}× | "
              f"{fastest:.3f}× |")
    if "NAGuidance" not in nodes.NODE_CLASS_MAPPINGS:
        print("| core NAGuidance | — | — | absent in this ComfyUI (added in 2026, PR #12500) | — |")


if __name__ == "__main__":
    main()
