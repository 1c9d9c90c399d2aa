"""Cost of AttentionCapture: wall time of a captured KSampler run against an uncaptured one, and the MB stored.

    python bench/bench_capture.py [--model tiny|sd15] [--size 256] [--steps 6] [--rounds 3]

Two 10-word prompts, every word captured; the runs alternate round by round; medians. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import bench_guidance  # noqa: E402
import comfy_helpers  # noqa: E402

POSITIVE = "professional office woman at a wooden desk with a laptop computer"
NEGATIVE = "glasses blurry dark noisy cropped frame text watermark logo signature"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "sd15"], default="tiny")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_")))
    from comfy_helpers import call_node

    import comfy.sample

    model, clip, latent, noise = bench_guidance.load_model(args.model, args.size)
    encode = lambda text: clip.encode_from_tokens_scheduled(clip.tokenize(text))  # noqa: E731
    p, n = encode(POSITIVE), encode(NEGATIVE)
    captured, handle = call_node("AttentionCapture", model=model, clip=clip, positive_text=POSITIVE,
                                 negative_text=NEGATIVE, positive_words="", negative_words="", special_tokens=False,
                                 max_mb=4096.0, over_cap="error")
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
    print(f"\n{args.model}, {args.size}×{args.size}, {args.steps} euler steps, {len(handle.words['positive'])} + "
          f"{len(handle.words['negative'])} words, median of {args.rounds} rounds\n")
    print("| run | s / run | ratio | stored |")
    print("|---|---|---|---|")
    print(f"| KSampler | {plain:.3f} | | |")
    print(f"| KSampler + AttentionCapture | {capture:.3f} | {capture / plain:.3f}× | "
          f"{handle.store.nbytes / 2**20:.2f} MB |")


if __name__ == "__main__":
    main()
