"""Cost of AttentionCapture: wall time of a captured KSampler run against an uncaptured one, and the MB stored.

    python bench/bench_capture.py [--model tiny|sd15|sd35|flux] [--size 256] [--steps 6] [--rounds 3]
                                  [--device cpu|cuda] [--dtype fp32|bf16|fp16]

Two 10-word prompts, every word captured; the runs alternate round by round; medians. On a GPU, for example:
    python bench/bench_capture.py --model sd35 --size 1024 --device cuda --dtype bf16
Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts"), str(ROOT / "bench")]

import bench_models as models  # noqa: E402
import comfy_helpers  # noqa: E402

POSITIVE = "professional office woman at a wooden desk with a laptop computer"
NEGATIVE = "glasses blurry dark noisy cropped frame text watermark logo signature"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models.add_arguments(parser, size=256, steps=6, rounds=3)
    args = parser.parse_args()
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_")), cpu=args.device == "cpu")
    from comfy_helpers import call_node

    import comfy.sample

    model, clip, latent, noise = models.load(args.model, args.size, args.dtype, args.device)
    captured, handle, p, n = call_node("AttentionCapture", model=model, clip=clip, positive_text=POSITIVE,
                                       negative_text=NEGATIVE, positive_words="", negative_words="",
                                       special_tokens=False, max_mb=4096.0, over_cap="error")
    runs = {name: (lambda m=m: comfy.sample.sample(m, noise, args.steps, 7.0, "euler", "normal", p, n, latent,
                                                   disable_pbar=True, seed=0))
            for name, m in (("uncaptured", model), ("captured", captured))}
    times = {name: [] for name in runs}
    for _ in range(args.rounds + 1):  # the first round warms up
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    plain, capture = (statistics.median(times[k][1:]) for k in ("uncaptured", "captured"))
    store = handle.recorder.finished
    import torch

    print(f"\n{args.model}, {args.size}×{args.size}, {args.dtype} on {args.device}, {args.steps} euler steps, "
          f"{len(handle.words['positive'])} + {len(handle.words['negative'])} words, median of {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads\n")
    print("| run | s / run | ratio | stored per step |")
    print("|---|---|---|---|")
    print(f"| KSampler | {plain:.3f} | | |")
    print(f"| KSampler + AttentionCapture | {capture:.3f} | {capture / plain:.3f}× | "
          f"{store.nbytes / len(store.steps()) / 2**20:.2f} MB |")


if __name__ == "__main__":
    main()
