"""What an attention-space negative does at cfg 1 on the toy concept model, beside eq. 9 at cfg 3.

    python bench/bench_nag_toy.py [--seeds 10] [--steps 20]

The twelve prompt pairs of bench_gate.py × ``--seeds`` seeds, euler. Each variant's concept rate over the clean
pictures (toy/detect.py; the unclean count beside it) and its SSIM to the same seed at cfg 1 without a negative:
cfg 1 alone; AttentionNegativeTerm over a φ sweep from step 0, with the peers' α = 0.25 and with α = 1 (no blend
back to Z⁺), and φ 8, α 1 from 20% of the steps, τ = 2.5, through NegativeGuidanceCFG in standard mode (1 model
evaluation per step); core NAGuidance at the same φ (its nag_scale is φ + 1), α and τ, fed the CFG negative, as it
takes its negative (2 evaluations per step; it has no window); and eq. 9 at cfg 3 (2 evaluations per step), whose
SSIM is to its own cfg-3 run without a negative. When each kind of negative acts: the attention negative (φ 8, α 1)
and eq. 9 at cfg 3, each started at 0, 10, 20 and 40% of the steps. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import comfy_helpers  # noqa: E402
from bench_gate import GATE_PAIRS, cfg_node, rate  # noqa: E402
from bench_toy_concepts import Toy, detect, ssim  # noqa: E402
from comfy_helpers import call_node  # noqa: E402

VARIANTS = [*((phi, alpha, 0.0) for alpha in (0.25, 1.0) for phi in (2.0, 4.0, 8.0)),
            *((8.0, 1.0, start) for start in (0.1, 0.2, 0.4))]
CORE = [(8.0, 0.25), (8.0, 1.0)]  # core NAGuidance's (φ, α), τ 2.5
STARTS = (0.1, 0.2, 0.4)  # eq. 9 at cfg 3 started later (0: the plain eq. 9 row)


def nag_model(toy: Toy, negative, phi: float, alpha: float, start: float):
    term = call_node("AttentionNegativeTerm", conditioning=negative, scale=phi, tau=2.5, alpha=alpha, start=start,
                     end=1.0, window_unit="steps", schedule="constant")[0]
    return call_node("NegativeGuidanceCFG", model=toy.model, mode="standard", neg_scale=0.0, neg_start=0.0,
                     neg_end=1.0, window_unit="steps", neg_schedule="constant", empty=toy.empty, terms=term)[0]


def score(name: str, kind: str, images, reference, negative: str) -> dict:
    votes = [detect.present(f, negative) for f in detect.detect(images)]
    clean = [v for v in votes if v is not None]
    return {"variant": name, "type": kind, "present": sum(clean), "clean": len(clean),
            "ssim": float(ssim(images, reference).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_nag_toy_")))
    started = time.perf_counter()
    toy = Toy(list(range(1, args.seeds + 1)))
    rows = []
    for positive, negative, kind in GATE_PAIRS:
        p, n = toy.encode(positive), toy.encode(negative)
        plain = toy.images(toy.model, p, n, args.steps, cfg=1.0)
        rows.append(score("cfg 1, no negative", kind, plain, plain, negative))
        for phi, alpha, start in VARIANTS:
            images = toy.images(nag_model(toy, n, phi, alpha, start), p, n, args.steps, cfg=1.0)
            rows.append(score(f"cfg 1, attention negative φ {phi:g}, α {alpha:g}, from {start:.0%}", kind, images,
                              plain, negative))
        for phi, alpha in CORE:
            core = call_node("NAGuidance", model=toy.model, nag_scale=phi + 1.0, nag_alpha=alpha, nag_tau=2.5)[0]
            rows.append(score(f"cfg 1, core NAGuidance φ {phi:g}, α {alpha:g}", kind,
                              toy.images(core, p, n, args.steps, cfg=1.0), plain, negative))
        guided_plain = toy.images(toy.model, p, toy.empty, args.steps)
        rows.append(score("cfg 3, no negative", kind, guided_plain, guided_plain, negative))
        rows.append(score("cfg 3, eq. 9", kind, toy.images(cfg_node(toy, args.steps), p, n, args.steps),
                          guided_plain, negative))
        for start in STARTS:
            late = cfg_node(toy, args.steps, start=round(start * args.steps))
            rows.append(score(f"cfg 3, eq. 9 from {start:.0%}", kind, toy.images(late, p, n, args.steps),
                              guided_plain, negative))
        print(f"  {positive!r} − {negative!r} done ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\n**Attention-space negatives on the toy model** ({len(GATE_PAIRS)} pairs × {args.seeds} seeds, euler "
          f"{args.steps} steps, τ 2.5; concept rate ± binomial standard error (clean pictures))\n")
    print("| variant | model evaluations / step | nouns: concept rate | adjectives: concept rate | SSIM to no "
          "negative |")
    print("|---|---|---|---|---|")
    for variant in dict.fromkeys(r["variant"] for r in rows):
        group = [r for r in rows if r["variant"] == variant]
        evaluations = 2 if variant.startswith("cfg 3") or "core" in variant else 1
        mean_ssim = sum(r["ssim"] for r in group) / len(group)
        print(f"| {variant} | {evaluations} | {rate(group, 'noun')} | {rate(group, 'adjective')} | {mean_ssim:.3f} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
