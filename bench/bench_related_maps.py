"""Do the toy model's maps say which positive word a negative word belongs to? The evidence for r(i)'s rule.

    python bench/bench_related_maps.py [--seeds 8] [--steps 20]

For each prompt pair of bench_gate.py whose positive has two content words or more, one captured eq. 9 run at cfg 3
(``--seeds`` images, euler): the Pearson correlation of the negative word's map (summed over steps, layers and
images, as AttentionRt aggregates it) with each positive content word's, the prompt's subject, and the r(i) that
AttentionRt chose with its reason (attention/related.py: the maps win over the subject only where one word's
correlation is ≥ 0.5 and ≥ 0.2 above the subject's). Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import comfy_helpers  # noqa: E402
import harness  # noqa: E402
from bench_gate import GATE_PAIRS, cfg_node  # noqa: E402
from bench_toy_concepts import Toy  # noqa: E402
from comfy_helpers import call_node  # noqa: E402


def report(toy: Toy, positive: str, negative: str, steps: int):
    """AttentionRt's report of one captured eq. 9 run, and the captured words."""
    import comfy.sample

    analysis, nodes = harness.module("attention.analysis"), harness.module("nodes.attention_nodes")
    captured, handle, p, n = call_node("AttentionCapture", model=cfg_node(toy, steps), clip=toy.clip,
                                       positive_text=positive, negative_text=negative, positive_words="",
                                       negative_words="", special_tokens=False, max_mb=2048.0, over_cap="error")[:4]
    comfy.sample.sample(captured, toy.noise, steps, 3.0, "euler", "normal", p, n, toy.latent, disable_pbar=True,
                        seed=0)
    found = analysis.analyse(handle.recorder.finished, handle.words, "frobenius", 0.5, {},
                             nodes.word_embeddings(handle.recorder.prompts), positive_text=positive)
    return found, list(handle.words["positive"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_related_maps_")))
    related = harness.module("attention.related")
    toy = Toy(list(range(1, args.seeds + 1)))
    print("| positive | negative | ρ of its map with each content word | subject | r(i) chosen: why |")
    print("|---|---|---|---|---|")
    for positive, negative, _ in GATE_PAIRS:
        words = related.split_prompt(positive)
        if len(related.content_words(list(dict.fromkeys(words)))) < 2:
            continue
        found, positives = report(toy, positive, negative, args.steps)
        aggregate = {branch: maps.sum((0, 1)) for branch, maps in found.maps.items()}  # (words, h, w)
        rho = related.pearson(aggregate["negative"][0], aggregate["positive"])
        listed = ", ".join(f"{positives[j]} {rho[j]:+.2f}" for j in related.content_words(positives))
        head = related.subject(words)
        curve = found.curves[0]
        print(f"| {positive} | {negative} | {listed} | {'—' if head is None else words[head]} | "
              f"{curve.related}: {curve.related_by} |")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
