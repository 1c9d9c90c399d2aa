"""Does a measured gate beat Ban et al.'s fixed delay? The gate study of the toy concept model.

    python bench/bench_gate.py [--seeds 10] [--steps 50] [--out bench/results/gate]

Twelve prompt pairs (six nouns: parts with a place of their own; six adjectives: colour and texture) × ``--seeds``
seeds, eq. 9 at cfg 3, euler, ``--steps`` steps. Every image is judged by toy/detect.py over the pictures it calls
clean; MSE and SSIM are to the same seed without a negative. Variants:

- no negative; the full negative (K = 0); a fixed start K ∈ {2, 5, 10, 20}; the window 5–15;
- probe rules, read per seed from a captured full-negative run (its cost: one more run): (a) r_t onset,
  ``onset(r_t, 0.5)``; (b) the positive's lock-on, ``lock_on(maps, 0.9)``; then the negative from the chosen step;
- the online rule (c): NegativeGuidanceCFG's ``auto_start`` ε, run per seed (the gate is decided in the run);
- an automatic end in eq. 8 (independent, s⁻ = cfg − 1, which is eq. 9 with u evaluated): the negative stops once its
  probe r_t has fallen back below END of its peak after the peak; removal, and evaluations saved (3 → 2 per step).

Prints the Markdown tables of docs/gate.md (and the r_t shapes at each of ``--shape-steps``) and writes CSVs. Not a
test.
"""

from __future__ import annotations

import argparse
import logging
import re
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
from bench_toy_concepts import CFG, PAIRS, Toy, ssim, write_csv  # noqa: E402
from comfy_helpers import call_node  # noqa: E402

detect, gates = harness.module("toy.detect"), harness.module("attention.gates")
GATE_PAIRS = [pair if pair[0] else ("a green square", pair[1], pair[2]) for pair in PAIRS]  # r_t needs a positive
FIXED = (0, 2, 5, 10, 20)
WINDOW = (5, 15)
ONSET_FRACTION, LOCK_ON_RHO, EPSILONS = 0.5, 0.9, (0.02, 0.05)
END = 0.5  # automatic end: r_t back below END × its peak, after the peak


class OpenedAt(logging.Handler):
    """The step the online gate logged ('the negative ran from step N')."""

    def __init__(self):
        super().__init__()
        self.steps: list[int | None] = []

    def emit(self, record):
        text = record.getMessage()
        if "the negative ran from step" in text:
            self.steps.append(int(re.search(r"from step (\d+)", text).group(1)))
        elif "the negative never ran" in text:
            self.steps.append(None)


def cfg_node(toy: Toy, steps: int, mode: str = "standard", start: int = 0, end: int | None = None,
             auto_start: float = 0.0):
    return call_node("NegativeGuidanceCFG", model=toy.model, mode=mode, neg_scale=CFG - 1, neg_start=start / steps,
                     neg_end=1.0 if end is None else end / steps, window_unit="steps", neg_schedule="constant",
                     empty=toy.empty, auto_start=auto_start)[0]


def per_seed(toy: Toy, p, n, steps: int, values: list, model_of) -> torch.Tensor:
    """Images with a per-seed setting (a start or an end step, None allowed): one batched run of
    ``model_of(value)`` per distinct value, each seed's picture taken from its value's run."""
    out = torch.zeros(len(values), 32, 32, 3)
    for value in set(values):
        images = toy.images(model_of(value), p, n, steps)
        for i, v in enumerate(values):
            if v == value:
                out[i] = images[i]
    return out


def probe(toy: Toy, positive: str, negative: str, steps: int):
    """A captured full-negative run: (images, r_t per seed of the mean negative curve, positive maps per seed)."""
    analysis, nodes = harness.module("attention.analysis"), harness.module("nodes.attention_nodes")
    captured, handle, p, n = call_node("AttentionCapture", model=cfg_node(toy, steps), clip=toy.clip,
                                       positive_text=positive, negative_text=negative, positive_words="",
                                       negative_words="", special_tokens=False, max_mb=2048.0, over_cap="error")[:4]
    import comfy.sample

    samples = comfy.sample.sample(captured, toy.noise, steps, CFG, "euler", "normal", p, n, toy.latent,
                                  disable_pbar=True, seed=0)
    report = analysis.analyse(handle.recorder.finished, handle.words, "frobenius", ONSET_FRACTION, {},
                              nodes.word_embeddings(handle.recorder.prompts))
    per_seed = np.nanmean([c.per_image for c in report.curves], axis=0)  # (seeds, steps)
    return toy.vae.decode(samples), per_seed, report.maps["positive"], report.curves


def automatic_end(curve: np.ndarray) -> int | None:
    """The step after the peak where r_t first falls below END × peak; None if it never does."""
    peak = int(np.nanargmax(curve))
    after = [t for t in range(peak + 1, len(curve)) if curve[t] < END * curve[peak]]
    return after[0] if after else None


def scores(name: str, kind: str, images, plain, negative: str, gates_chosen, evaluations: float) -> dict:
    votes = [detect.present(f, negative) for f in detect.detect(images)]
    clean = [v for v in votes if v is not None]
    return {"variant": name, "type": kind, "present": sum(clean), "clean": len(clean),
            "unclean": len(votes) - len(clean),
            "mse": float(((images - plain) ** 2).mean()), "ssim": float(ssim(images, plain).mean()),
            "evaluations": evaluations, "gates": " ".join("-" if g is None else str(g) for g in gates_chosen)}


def pair_rows(toy: Toy, positive: str, negative: str, kind: str, steps: int, seeds: int, online: OpenedAt) -> list:
    p, n = toy.encode(positive), toy.encode(negative)
    plain = toy.images(toy.model, p, toy.empty, steps)
    rows = [scores("no negative", kind, plain, plain, negative, [], 2 * steps)]
    full, rt, positive_maps, curves = probe(toy, positive, negative, steps)
    rows.append(scores("K = 0 (full negative)", kind, full, plain, negative, [0] * seeds, 2 * steps))
    for k in FIXED[1:]:
        rows.append(scores(f"K = {k}", kind, toy.images(cfg_node(toy, steps, start=k), p, n, steps), plain,
                           negative, [k] * seeds, 2 * steps))
    window = toy.images(cfg_node(toy, steps, start=WINDOW[0], end=WINDOW[1]), p, n, steps)
    rows.append(scores(f"window {WINDOW[0]}–{WINDOW[1]}", kind, window, plain, negative, [WINDOW[0]] * seeds,
                       2 * steps))
    onsets = [gates.onset(rt[i], ONSET_FRACTION) for i in range(seeds)]
    locks = [gates.lock_on(positive_maps[:, i], LOCK_ON_RHO) for i in range(seeds)]
    for name, chosen in (("(a) r_t onset, probe", onsets), ("(b) lock-on, probe", locks)):
        images = per_seed(toy, p, n, steps, chosen, lambda start: cfg_node(toy, steps, start=start))
        rows.append(scores(name, kind, images, plain, negative, chosen, 4 * steps))
    for epsilon in EPSILONS:
        images, chosen = [], []
        for i in range(seeds):
            single = Toy([i + 1], (toy.model, toy.clip, toy.vae))
            online.steps.clear()
            images.append(single.images(cfg_node(single, steps, auto_start=epsilon), p, n, steps))
            chosen.append(online.steps[-1] if online.steps else None)
        rows.append(scores(f"(c) online, ε = {epsilon:g}", kind, torch.cat(images), plain, negative, chosen,
                           2 * steps))
    ends = [automatic_end(rt[i]) for i in range(seeds)]
    eq8 = per_seed(toy, p, n, steps, ends, lambda end: cfg_node(toy, steps, mode="independent", end=end))
    saved = np.mean([0 if e is None else steps - e for e in ends])
    rows.append(scores("eq. 8, automatic end", kind, eq8, plain, negative, ends, 3 * steps - saved + 2 * steps))
    related = " ".join(f"{c.word}→{c.related}" for c in curves)
    return [{**row, "related": related} for row in rows]


def shapes(toy: Toy, step_counts: list[int]) -> list[dict]:
    """Mean ± std over pairs × seeds of the noun and adjective r_t, per step count; peak as a fraction of the run."""
    rows = []
    for steps in step_counts:
        curves = {"noun": [], "adjective": []}
        for positive, negative, kind in GATE_PAIRS:
            curves[kind].extend(probe(toy, positive, negative, steps)[1])
        for kind, c in curves.items():
            mean, std = np.nanmean(c, axis=0), np.nanstd(c, axis=0)
            peak = int(np.nanargmax(mean))
            rows.append({"steps": steps, "type": kind, "peak_step": peak, "peak_fraction": peak / steps,
                         "r0": mean[0], "peak": mean[peak], "last": mean[-1], "std_at_peak": std[peak],
                         "mean": " ".join(f"{v:.3f}" for v in mean)})
    return rows


def rate(rows: list[dict], kind: str) -> str:
    """The concept rate over the clean pictures of one word type, ± its binomial standard error (clean count)."""
    present = sum(r["present"] for r in rows if r["type"] == kind)
    clean = sum(r["clean"] for r in rows if r["type"] == kind)
    if not clean:
        return "n/a"
    share = present / clean
    return f"{share:.0%} ± {np.sqrt(share * (1 - share) / clean):.0%} ({clean})"


def summary(rows: list[dict]) -> list[str]:
    lines = ["| variant | nouns: concept rate | adjectives: concept rate | MSE | SSIM | prompt evaluations per image "
             "| gates (min / median / max) | seeds within ±2 steps of the pair's median |",
             "|---|---|---|---|---|---|---|---|"]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        group = [r for r in rows if r["variant"] == variant]
        chosen = [[int(g) for g in r["gates"].split() if g != "-"] for r in group]
        flat = [g for c in chosen for g in c]
        agree = [abs(g - np.median(c)) <= 2 for c in chosen if c for g in c]
        spread = f"{min(flat)} / {int(np.median(flat))} / {max(flat)}" if flat else "—"
        agreement = f"{np.mean(agree):.0%}" if agree else "—"
        mse, sim, cost = (np.mean([r[key] for r in group]) for key in ("mse", "ssim", "evaluations"))
        lines.append(f"| {variant} | {rate(group, 'noun')} | {rate(group, 'adjective')} | {mse:.4f} | {sim:.3f} | "
                     f"{cost:.0f} | {spread} | {agreement} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--shape-steps", type=int, nargs="*", default=[20, 30])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gate")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_gate_")))
    online = OpenedAt()
    logging.getLogger().addHandler(online)
    logging.getLogger().setLevel(logging.INFO)
    started = time.perf_counter()
    toy = Toy(list(range(1, args.seeds + 1)))
    rows = []
    for positive, negative, kind in GATE_PAIRS:
        rows += [{"positive": positive, "negative": negative, **r}
                 for r in pair_rows(toy, positive, negative, kind, args.steps, args.seeds, online)]
        print(f"  {positive!r} − {negative!r} done ({time.perf_counter() - started:.0f} s)", flush=True)
    write_csv(args.out / "gate.csv", rows)
    chosen = {(r["positive"], r["related"]) for r in rows}
    shape_words = sum(any(w in related for w in ("→circle", "→square", "→triangle", "→shape"))
                      for _, related in chosen)
    print(f"\nr(i) is the shape word in {shape_words} of {len(chosen)} curves: "
          + "; ".join(f"{p!r}: {related}" for p, related in sorted(chosen)))
    print(f"\n**Gate study** ({len(GATE_PAIRS)} pairs × {args.seeds} seeds, {args.steps} steps, eq. 9 at cfg {CFG:g};"
          " concept rate ± binomial standard error (clean pictures))\n")
    print("\n".join(summary(rows)))
    shape_rows = shapes(toy, [*args.shape_steps, args.steps])
    write_csv(args.out / "shapes.csv", shape_rows)
    print("\n| steps | group | r_t peak step | peak as a fraction of the run | r₀ | peak | last | std at the peak |")
    print("|---|---|---|---|---|---|---|---|")
    for r in shape_rows:
        print(f"| {r['steps']} | {r['type']} | {r['peak_step']} | {r['peak_fraction']:.0%} | {r['r0']:.3f} | "
              f"{r['peak']:.3f} | {r['last']:.3f} | {r['std_at_peak']:.3f} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
