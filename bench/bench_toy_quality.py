"""Is the toy world and model good enough to test the pack's claims? Clean pictures, detectors, priors, removal.

    python bench/bench_toy_quality.py [--seeds 16] [--steps 30] [--weights PATH] [--out bench/results/toy_quality]

1. Clean rate: PROMPTS × seeds at cfg 3 with each sampler (scheduler normal) at each step count: the share of
   pictures toy/detect.py calls clean (one object, smooth background, one body colour), and the share that are
   clean and show every attribute the prompt names.
2. Detector accuracy: (a) on rendered held-out scenes against each scene's truth, every attribute; (b) on generated
   pictures of FULL prompts, which name shape, colour, texture and all three parts, against the prompt. (b) measures
   the model's fidelity and the detector together, so it bounds the detector's accuracy from below; it is taken over
   the clean pictures, with the unclean count beside it.
3. Priors: for each noun-like part and adjective-like colour or texture, the share of clean pictures showing it,
   over positives that leave its attribute unnamed, without a negative (p against u, cfg 3, euler).
4. Removal by eq. 9, ε̂ = n + s(p − n) (Ban et al. 2024, arXiv 2406.02965; the pack's NegativeGuidanceCFG in
   standard mode): at the same positives and seeds with the concept as the negative, of the seeds whose picture
   without the negative is clean and shows the concept, the share whose picture with it is clean and lacks it. An
   unclean picture counts as not removed, and the count is reported.
5. When each concept is decided: the same removal with the negative switched on only from step ⌊f·N⌋ of N (plain
   CFG before it, Ban et al.'s delayed negative), f in STARTS. A concept the sampler has already drawn by then
   stays; a part decided mid-schedule is still removed by a later start than a colour decided early.

Writes CSVs and report.md into --out and prints the Markdown tables. Not a test.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import comfy_helpers  # noqa: E402
import harness  # noqa: E402
from bench_toy_concepts import Toy, write_csv  # noqa: E402

data, detect = harness.module("toy.data"), harness.module("toy.detect")


CFG = 3.0
HELD_OUT_SEED, HELD_OUT = 2026, 2000  # training draws its scenes from seed 0
PROMPTS = [
    "a red circle", "a striped blue square with a hat", "a plain green triangle with eyes and legs",
    "a blue circle with legs", "red, square, eyes", "hat, triangle", "a striped shape",
    "a green square with a hat, eyes and legs", "a shape", "", "blue, striped, circle, hat", "a plain red triangle",
]
FULL = [f"a {texture} {colour} {shape} with a hat, eyes and legs"
        for texture, colour, shape in itertools.product(data.TEXTURES, data.COLOURS, data.SHAPES)]
POSITIVES = {  # positives that leave the attribute unnamed
    "part": ["a red circle", "a striped blue square", "a plain green triangle", "square, red", "a shape",
             "a blue circle"],
    "colour": ["a circle with a hat", "a striped square", "a triangle with eyes", "square, legs",
               "a plain circle with legs", "a shape"],
    "texture": ["a red circle", "a blue square with a hat", "a green triangle with legs", "triangle, eyes",
                "a circle with eyes", "a shape"],
}
CONCEPTS = {**{p: ("noun", "part") for p in data.PARTS}, **{c: ("adjective", "colour") for c in data.COLOURS},
            **{t: ("adjective", "texture") for t in data.TEXTURES}}
ATTRIBUTES = ("shape", "colour", "texture", *data.PARTS)
STARTS = (0.0, 0.2, 0.4, 0.6)  # negative start as a fraction of the steps; 0 is the removal of section 4


def matches(found: dict | None, asked: dict) -> bool:
    """A clean picture that shows every attribute the prompt names."""
    return found is not None and all(found[key] == value for key, value in asked.items())


def clean_rates(toy: Toy, samplers: list[str], step_counts: list[int]) -> list[dict]:
    rows = []
    empty = toy.empty
    for sampler, steps in itertools.product(samplers, step_counts):
        clean = good = total = 0
        for prompt in PROMPTS:
            found = detect.detect(toy.images(toy.model, toy.encode(prompt), empty, steps, CFG, sampler))
            asked = data.named(prompt)
            total += len(found)
            clean += sum(f is not None for f in found)
            good += sum(matches(f, asked) for f in found)
        rows.append({"sampler": sampler, "steps": steps, "pictures": total, "clean": clean / total,
                     "clean_and_asked": good / total})
        print(f"  {sampler} {steps}: clean {clean}/{total}, with the asked attributes {good}/{total}", flush=True)
    return rows


def rendered_accuracy() -> list[dict]:
    """Accuracy of each detector on rendered held-out scenes (an unclean verdict counts as wrong)."""
    scenes = data.scenes(HELD_OUT_SEED, HELD_OUT)
    found = detect.detect(data.images(scenes))
    unclean = sum(f is None for f in found)
    return [{"attribute": key, "pictures": len(scenes), "unclean": unclean,
             "accuracy": float(np.mean([f is not None and f[key] == getattr(s, key)
                                        for f, s in zip(found, scenes, strict=True)]))} for key in ATTRIBUTES]


def generated_agreement(toy: Toy, steps: int) -> list[dict]:
    """Per attribute, the share of clean pictures of FULL prompts whose detection agrees with the prompt."""
    found, asked = [], []
    for prompt in FULL:
        batch = detect.detect(toy.images(toy.model, toy.encode(prompt), toy.empty, steps))
        found += batch
        asked += [data.named(prompt)] * len(batch)
    clean = [(f, a) for f, a in zip(found, asked, strict=True) if f is not None]
    return [{"attribute": key, "pictures": len(found), "unclean": len(found) - len(clean),
             "agreement": float(np.mean([f[key] == a[key] for f, a in clean])) if clean else float("nan")}
            for key in ATTRIBUTES]


def priors_and_removal(toy: Toy, steps: int) -> list[dict]:
    plain = {p: detect.detect(toy.images(toy.model, toy.encode(p), toy.empty, steps))
             for p in sorted({p for ps in POSITIVES.values() for p in ps})}
    delayed = {start: toy.patched("standard", start=start) for start in STARTS}
    rows = []
    for concept, (kind, attribute) in CONCEPTS.items():
        without = [f for positive in POSITIVES[attribute] for f in plain[positive]]
        votes = [detect.present(f, concept) for f in without]
        clean = [v for v in votes if v is not None]
        had = [i for i, v in enumerate(votes) if v]
        row = {"concept": concept, "type": kind, "pictures": len(votes), "unclean_without": len(votes) - len(clean),
               "prior": float(np.mean(clean)) if clean else float("nan"), "had_it": len(had)}
        for start, model in delayed.items():
            guided = [f for positive in POSITIVES[attribute]
                      for f in detect.detect(toy.images(model, toy.encode(positive), toy.encode(concept), steps))]
            removed = sum(detect.present(guided[i], concept) is False for i in had)
            row |= {f"removed_from_{start:g}": removed, f"unclean_from_{start:g}": sum(guided[i] is None for i in had)}
        rows.append(row)
        removals = ", ".join(f"{row[f'removed_from_{start:g}']}/{len(had)} from {start:g}" for start in STARTS)
        print(f"  {concept}: prior {row['prior']:.0%}, removed {removals}", flush=True)
    return rows


def markdown(clean, rendered, agreement, removal, seeds: int, steps: int) -> str:
    lines = [f"**1. Clean pictures** ({len(PROMPTS)} prompts × {seeds} seeds, cfg {CFG:g}, scheduler normal)", "",
             "| sampler | steps | pictures | clean | clean with the asked attributes |", "|---|---|---|---|---|"]
    lines += [f"| {r['sampler']} | {r['steps']} | {r['pictures']} | {r['clean']:.1%} | {r['clean_and_asked']:.1%} |"
              for r in clean]
    lines += ["", f"**2. Detectors**: (a) rendered held-out scenes (seed {HELD_OUT_SEED}); (b) generated pictures of "
              f"{len(FULL)} prompts naming every attribute × {seeds} seeds, euler {steps} steps, agreement with the "
              "prompt over the clean ones", "",
              "| attribute | (a) accuracy | (a) pictures (unclean) | (b) agreement | (b) pictures (unclean) |",
              "|---|---|---|---|---|"]
    lines += [f"| {a['attribute']} | {a['accuracy']:.2%} | {a['pictures']} ({a['unclean']}) | {b['agreement']:.1%} | "
              f"{b['pictures']} ({b['unclean']}) |" for a, b in zip(rendered, agreement, strict=True)]
    lines += ["", f"**3–5. Priors, removal and when it stops working** (6 positives that leave the attribute unnamed "
              f"× {seeds} seeds, euler {steps} steps, cfg {CFG:g}; eq. 9 at the same seeds, from step 0 and from "
              "later fractions of the steps; removed = share of the seeds that had the concept without a negative)",
              "", "| concept | type | prior (no negative) | unclean without | had it | removed by eq. 9 "
              "(unclean with it) | " + " | ".join(f"removed from {start:.0%}" for start in STARTS[1:]) + " |",
              "|---|---|---|---|---|---|" + "---|" * len(STARTS[1:])]
    share = lambda r, start: r[f"removed_from_{start:g}"] / r["had_it"] if r["had_it"] else float("nan")  # noqa: E731
    lines += [f"| {r['concept']} | {r['type']} | {r['prior']:.0%} | {r['unclean_without']} | {r['had_it']} | "
              f"{share(r, 0.0):.0%} ({r['unclean_from_0']}) | " + " | ".join(f"{share(r, start):.0%}"
                                                                            for start in STARTS[1:]) + " |"
              for r in removal]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30, help="steps for the detector, prior and removal runs")
    parser.add_argument("--clean-steps", type=int, nargs="+", default=[20, 30, 50])
    parser.add_argument("--samplers", nargs="+", default=["euler", "dpmpp_2m"])
    parser.add_argument("--weights", type=Path, help="a weights file other than the shipped one")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine: OpenMP "
                        "threads that wait for each other slow down many times over when the cores are shared)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "toy_quality")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_toy_quality_")))
    started = time.perf_counter()
    models = None
    if args.weights:
        models = harness.module("toy.model").load(args.weights)
    toy = Toy(list(range(1, args.seeds + 1)), models)
    print("clean rate", flush=True)
    clean = clean_rates(toy, args.samplers, args.clean_steps)
    rendered = rendered_accuracy()
    print("detector agreement on generated pictures", flush=True)
    agreement = generated_agreement(toy, args.steps)
    print("priors and removal", flush=True)
    removal = priors_and_removal(toy, args.steps)
    for name, rows in (("clean", clean), ("rendered", rendered), ("agreement", agreement), ("removal", removal)):
        write_csv(args.out / f"{name}.csv", rows)
    report = markdown(clean, rendered, agreement, removal, args.seeds, args.steps)
    report += f"\n{time.perf_counter() - started:.0f} s\n"
    (args.out / "report.md").write_text(report, encoding="utf-8")
    print("\n" + report)


if __name__ == "__main__":
    main()
