"""Do negatives work on the toy concept model? Suppression, r_t by word type, delayed negatives, an eq. 8 sweep.

    python bench/bench_toy_concepts.py [--seeds 10] [--steps 30] [--out bench/results/toy_concepts]

Twelve prompt pairs (six noun-like parts: hat, eyes, legs; six adjective-like attributes: colours, stripes) whose
positive leaves the negative's concept to the model's prior ("" − "legs" is the unconditional prior; the priors
themselves are measured by bench/bench_toy_quality.py). Every image is judged by the pixel-rule detectors of
toy/detect.py, over the pictures they call clean. Writes CSVs and PNGs into --out and prints the README's Markdown
tables. Not a test.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import comfy_helpers  # noqa: E402
import harness  # noqa: E402
from comfy_helpers import call_node, noise_per_seed  # noqa: E402

report = harness.module("experiments.report")
group_curves, plot_groups, png = report.group_curves, report.plot_groups, report.png
detect = harness.module("toy.detect")

PAIRS = [  # positive, negative, word type: the positive leaves the negative's concept to the model's prior
    ("a red circle with eyes", "hat", "noun"), ("a blue square", "hat", "noun"),
    ("a striped green triangle", "eyes", "noun"), ("a red circle", "eyes", "noun"),
    ("a plain blue circle with a hat", "legs", "noun"), ("", "legs", "noun"),
    ("a shape", "blue", "adjective"), ("a triangle", "blue", "adjective"), ("a square with a hat", "red", "adjective"),
    ("a circle", "green", "adjective"), ("circle, eyes", "striped", "adjective"),
    ("a red square with legs", "striped", "adjective"),
]
SUBSET = [0, 2, 3, 6, 7, 9]  # three nouns, three adjectives for the delay and sweep grids
CFG = 3.0
DELAYS = (0, 2, 5, 10, 20)  # negative start K of DELAY_STEPS
DELAY_STEPS = 50
SWEEP = (1.0, 2.0, 4.0, 8.0)  # s⁻ at s⁺ = CFG; s⁻ = CFG − 1 is eq. 9; s⁻ = 0 is the no-negative run


def related_word(positive: str) -> str | None:
    """r(i) for the study: the positive's shape noun, else "shape"; None for the empty prompt (no r_t)."""
    return next((word for word in ("circle", "square", "triangle", "shape") if word in positive), None)


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image of [N, H, W, 3] images in [0, 1] (Wang et al. 2004), Gaussian window, per channel."""
    x, y = (t.permute(0, 3, 1, 2).float() for t in (a, b))
    g = torch.exp(-((torch.arange(window) - window // 2) ** 2) / (2 * sigma**2))
    kernel = (g[:, None] * g[None, :] / g.sum() ** 2).expand(3, 1, window, window)
    blur = lambda t: F.conv2d(t, kernel, groups=3)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return index.mean(dim=(1, 2, 3))


class Toy:
    """The toy model (``models``: MODEL, CLIP, VAE; default the loader node's), and batched sampling of one prompt
    pair over all seeds."""

    def __init__(self, seeds: list[int], models: tuple | None = None):
        self.model, self.clip, self.vae = models or call_node("ToyConceptModelLoader")
        self.latent = torch.zeros(len(seeds), 3, 32, 32)
        self.noise = noise_per_seed(self.latent, seeds)
        self.empty = self.encode("")

    def encode(self, text: str):
        return self.clip.encode_from_tokens_scheduled(self.clip.tokenize(text))

    def images(self, model, positive, negative, steps: int, cfg: float = CFG, sampler: str = "euler") -> torch.Tensor:
        import comfy.sample

        samples = comfy.sample.sample(model, self.noise, steps, cfg, sampler, "normal", positive, negative,
                                      self.latent, disable_pbar=True, seed=0)
        return self.vae.decode(samples)

    def patched(self, mode: str, neg_scale: float = 0.0, start: float = 0.0):
        return call_node("NegativeGuidanceCFG", model=self.model, mode=mode, neg_scale=neg_scale, neg_start=start,
                         neg_end=1.0, window_unit="steps", neg_schedule="constant", empty=self.empty)[0]


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def suppression_and_rt(toy: Toy, steps: int, out: Path) -> tuple[list[dict], list[dict]]:
    """Concept rate without and with the negative (eq. 9 at cfg CFG) per pair; r_t per seed of the negative run."""
    from attention.analysis import sample_rt

    rows, rt_rows = [], []
    for positive, negative, kind in PAIRS:
        p, n = toy.encode(positive), toy.encode(negative)
        plain = toy.images(toy.model, p, toy.empty, steps)
        related = related_word(positive)
        if related is None:
            guided = toy.images(toy.patched("standard"), p, n, steps)
        else:
            captured, handle = call_node("AttentionCapture", model=toy.patched("standard"), clip=toy.clip,
                                         positive_text=positive, negative_text=negative, positive_words="",
                                         negative_words="", special_tokens=False, max_mb=512.0, over_cap="error")
            guided = toy.images(captured, p, n, steps)
        rows.append({"positive": positive, "negative": negative, "type": kind, "seeds": len(plain),
                     "without": detect.rate(plain, negative), "with": detect.rate(guided, negative)})
        print(f"  {positive!r} − {negative!r}: {rows[-1]['without']:.0%} → {rows[-1]['with']:.0%}", flush=True)
        if related is None:
            continue
        related = handle.words["positive"].index(related)
        for sample in range(len(plain)):
            for step, r in enumerate(sample_rt(handle.store, 0, related, "frobenius", sample)):
                rt_rows.append({"positive": positive, "negative": negative, "type": kind, "seed": sample,
                                "step": step, "r": r})
    write_csv(out / "suppression.csv", rows)
    write_csv(out / "rt.csv", rt_rows)
    groups = group_curves(rt_rows, [])
    plot_groups(groups, out / "rt_by_group.png")
    return rows, [{"type": kind, "mean": mean, "std": std} for kind, (mean, std, _) in groups.items()]


def delays(toy: Toy, out: Path) -> list[dict]:
    """Concept rate and change from the no-negative image (MSE, SSIM) for a negative from step K of 50."""
    rows = []
    for index in SUBSET:
        positive, negative, kind = PAIRS[index]
        p, n = toy.encode(positive), toy.encode(negative)
        plain = toy.images(toy.model, p, toy.empty, DELAY_STEPS)
        without = detect.rate(plain, negative)
        guided = {k: toy.images(toy.patched("standard", start=k / DELAY_STEPS), p, n, DELAY_STEPS) for k in DELAYS}
        for k, images in guided.items():
            rows.append({"positive": positive, "negative": negative, "type": kind, "K": k,
                         "without": without, "with": detect.rate(images, negative),
                         "mse": float(((images - plain) ** 2).mean()), "ssim": float(ssim(images, plain).mean())})
        strip = lambda images: torch.cat(list(images[:6]), 1)  # noqa: E731
        png(torch.cat([strip(plain), *(strip(guided[k]) for k in DELAYS)]), out / f"delay_{index}.png")
    write_csv(out / "delay.csv", rows)
    return rows


def sweep(toy: Toy, steps: int, out: Path) -> list[dict]:
    """Eq. 8 at s⁺ = CFG over s⁻, beside eq. 9: concept rate and SSIM to the no-negative image."""
    rows = []
    for index in SUBSET:
        positive, negative, kind = PAIRS[index]
        p, n = toy.encode(positive), toy.encode(negative)
        plain = toy.images(toy.model, p, toy.empty, steps)
        standard = toy.images(toy.patched("standard"), p, n, steps)
        without = detect.rate(plain, negative)
        for s in SWEEP:
            guided = toy.images(toy.patched("independent", neg_scale=s), p, n, steps)
            rows.append({"positive": positive, "negative": negative, "type": kind, "neg_scale": s,
                         "without": without, "rate": detect.rate(guided, negative),
                         "ssim": float(ssim(guided, plain).mean()),
                         "max_diff_eq9": float((guided - standard).abs().max()) if s == CFG - 1 else ""})
    write_csv(out / "sweep.csv", rows)
    return rows


def mean_by(rows: list[dict], key: str, value: str) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault((row[key], row["type"]), []).append(row[value])
        groups.setdefault((row[key], "all"), []).append(row[value])
    return {k: float(np.mean(v)) for k, v in groups.items()}


def report(suppression, curves, delay_rows, sweep_rows, seconds: float) -> None:
    print(f"\n| negatives | pairs × seeds | concept without the negative | with it (eq. 9, cfg {CFG:g}) |")
    print("|---|---|---|---|")
    for kind in ("noun", "adjective"):
        rows = [r for r in suppression if r["type"] == kind]
        print(f"| {kind}s | {len(rows)} × {rows[0]['seeds']} | {np.mean([r['without'] for r in rows]):.0%} | "
              f"{np.mean([r['with'] for r in rows]):.0%} |")
    print("\n| group | r_t peak step (of the run) | peak mean r_t | r_t at the last step |")
    print("|---|---|---|---|")
    for curve in curves:
        mean = np.asarray(curve["mean"])
        print(f"| {curve['type']} | {int(np.nanargmax(mean))} | {np.nanmax(mean):.3f} | {mean[-1]:.3f} |")
    print(f"\n| negative from step K of {DELAY_STEPS} | concept rate (nouns / adjectives) | MSE to no negative | "
          "SSIM to no negative |")
    print("|---|---|---|---|")
    rates, mse, sim = (mean_by(delay_rows, "K", v) for v in ("with", "mse", "ssim"))
    base = mean_by(delay_rows, "K", "without")
    print(f"| no negative | {base[(0, 'noun')]:.0%} / {base[(0, 'adjective')]:.0%} | 0 | 1 |")
    for k in DELAYS:
        print(f"| {k} | {rates[(k, 'noun')]:.0%} / {rates[(k, 'adjective')]:.0%} | {mse[(k, 'all')]:.4f} | "
              f"{sim[(k, 'all')]:.3f} |")
    print(f"\n| eq. 8, s⁺ = {CFG:g} | concept rate (nouns / adjectives) | SSIM to no negative |")
    print("|---|---|---|")
    rates, sim = mean_by(sweep_rows, "neg_scale", "rate"), mean_by(sweep_rows, "neg_scale", "ssim")
    base = mean_by(sweep_rows, "neg_scale", "without")
    print(f"| s⁻ = 0 (no negative) | {base[(SWEEP[0], 'noun')]:.0%} / {base[(SWEEP[0], 'adjective')]:.0%} | 1 |")
    for s in SWEEP:
        label = f"s⁻ = {s:g}" + (" (= eq. 9)" if s == CFG - 1 else "")
        print(f"| {label} | {rates[(s, 'noun')]:.0%} / {rates[(s, 'adjective')]:.0%} | {sim[(s, 'all')]:.3f} |")
    diffs = [r["max_diff_eq9"] for r in sweep_rows if r["max_diff_eq9"] != ""]
    print(f"\neq. 8 at s⁻ = s⁺ − 1 against eq. 9: max abs pixel difference {max(diffs):.2e}; total {seconds:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "toy_concepts")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_toy_")))
    started = time.perf_counter()
    toy = Toy(list(range(1, args.seeds + 1)))
    suppression, curves = suppression_and_rt(toy, args.steps, args.out)
    delay_rows = delays(toy, args.out)
    sweep_rows = sweep(toy, args.steps, args.out)
    report(suppression, curves, delay_rows, sweep_rows, time.perf_counter() - started)


if __name__ == "__main__":
    main()
