"""Does a measured gate beat Ban et al.'s fixed delay? The gate study of the toy concept model.

    python bench/bench_gate.py [--seeds 10] [--steps 50] [--out bench/results/gate]

Twelve prompt pairs (six nouns: parts with a place of their own; six adjectives: colour and texture) × ``--seeds``
seeds, eq. 9 at cfg 3, euler, ``--steps`` steps. Every image is judged by toy/detect.py over the pictures it calls
clean; MSE and SSIM are to the same seed without a negative. Variants:

- no negative; the full negative (K = 0); a fixed start K ∈ {2, 5, 10, 20}; the window 5–15;
- probe rules, read per seed from a captured full-negative run (its cost: one more run): (a) r_t onset,
  ``onset(r_t, 0.5)``; (b) the positive's lock-on, ``lock_on(maps, 0.9)``; then the negative from the chosen step;
- the online rule (c): NegativeGuidanceCFG's ``auto_start`` ε, run per seed (the gate is decided in the run);
- an automatic end in eq. 8 (independent) at s⁻ = END_SCALE, where u is evaluated beside p and n (at s⁻ = cfg − 1 the
  planner drops u, since eq. 8 is then eq. 9): the negative stops once the r_t of a captured eq. 8 probe has fallen
  back below END of its peak after the peak; removal against the full eq. 8 run, and evaluations (3 → 2 per step).

Every run's model evaluations are counted by a unet wrapper (prompt evaluations per image, probes included).

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
from comfy_helpers import Recorder, call_node  # noqa: E402

detect, gates = harness.module("toy.detect"), harness.module("attention.gates")
GATE_PAIRS = [pair if pair[0] else ("a green square", pair[1], pair[2]) for pair in PAIRS]  # r_t needs a positive
FIXED = (0, 2, 5, 10, 20)
WINDOW = (5, 15)
ONSET_FRACTION, LOCK_ON_RHO, EPSILONS = 0.5, 0.9, (0.02, 0.05)
END, END_SCALE = 0.5, 8.0  # automatic end: r_t back below END × its peak; eq. 8's s⁻ (it removes parts, see tests)
RECORDER = Recorder()  # every model call of the study (main() puts it on the toy's model)


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
             auto_start: float = 0.0, scale: float = CFG - 1):
    return call_node("NegativeGuidanceCFG", model=toy.model, mode=mode, neg_scale=scale, neg_start=start / steps,
                     neg_end=1.0 if end is None else end / steps, window_unit="steps", neg_schedule="constant",
                     empty=toy.empty, auto_start=auto_start)[0]


def counted(run) -> tuple:
    """(run()'s result, the prompt evaluations per image its model calls made)."""
    before = len(RECORDER.calls)
    result = run()
    return result, sum(RECORDER.conds_per_call()[before:])


def run(toy: Toy, model, p, n, steps: int) -> tuple[torch.Tensor, int]:
    """(images, prompt evaluations per image) of one batched run over the toy's seeds."""
    return counted(lambda: toy.images(model, p, n, steps))


def per_seed(toy: Toy, p, n, steps: int, values: list, model_of) -> tuple[torch.Tensor, float]:
    """Images with a per-seed setting (a start or an end step, None allowed): one batched run of
    ``model_of(value)`` per distinct value, each seed's picture taken from its value's run; and the mean prompt
    evaluations per image over the seeds."""
    out, evaluations = torch.zeros(len(values), 32, 32, 3), {}
    for value in set(values):
        images, evaluations[value] = run(toy, model_of(value), p, n, steps)
        for i, v in enumerate(values):
            if v == value:
                out[i] = images[i]
    return out, float(np.mean([evaluations[v] for v in values]))


def probe(toy: Toy, positive: str, negative: str, steps: int, guided=None):
    """A captured full-negative run of ``guided`` (default eq. 9): (images, r_t per seed of the mean negative curve,
    positive maps per seed, the curves, prompt evaluations per image)."""
    analysis, nodes = harness.module("attention.analysis"), harness.module("nodes.attention_nodes")
    guided = cfg_node(toy, steps) if guided is None else guided
    captured, handle, p, n = call_node("AttentionCapture", model=guided, clip=toy.clip,
                                       positive_text=positive, negative_text=negative, positive_words="",
                                       negative_words="", special_tokens=False, max_mb=2048.0, over_cap="error")[:4]
    import comfy.sample

    samples, evaluations = counted(lambda: comfy.sample.sample(captured, toy.noise, steps, CFG, "euler", "normal", p,
                                                               n, toy.latent, disable_pbar=True, seed=0))
    report = analysis.analyse(handle.recorder.finished, handle.words, "frobenius", ONSET_FRACTION, {},
                              nodes.word_embeddings(handle.recorder.prompts))
    per_seed = np.nanmean([c.per_image for c in report.curves], axis=0)  # (seeds, steps)
    return toy.vae.decode(samples), per_seed, report.maps["positive"], report.curves, evaluations


def automatic_end(curve: np.ndarray) -> int | None:
    """The step after the peak where r_t first falls below END × peak; None if it never does."""
    peak = int(np.nanargmax(curve))
    after = [t for t in range(peak + 1, len(curve)) if curve[t] < END * curve[peak]]
    return after[0] if after else None


def scores(name: str, kind: str, images, plain, negative: str, gates_chosen, evaluations: float) -> dict:
    """One variant's row: concept votes over the clean pictures, MSE and SSIM to ``plain``, cost and gates."""
    votes = [detect.present(f, negative) for f in detect.detect(images)]
    clean = [v for v in votes if v is not None]
    return {"variant": name, "type": kind, "present": sum(clean), "clean": len(clean),
            "unclean": len(votes) - len(clean),
            "mse": float(((images - plain) ** 2).mean()), "ssim": float(ssim(images, plain).mean()),
            "evaluations": evaluations, "gates": " ".join("-" if g is None else str(g) for g in gates_chosen)}


def pair_rows(toy: Toy, positive: str, negative: str, kind: str, steps: int, seeds: int,
              online: OpenedAt) -> tuple[list, np.ndarray]:
    """The pair's rows of the gate table, and the full negative's r_t per seed (its probe)."""
    p, n = toy.encode(positive), toy.encode(negative)
    plain, cost = run(toy, toy.model, p, toy.empty, steps)
    rows = [scores("no negative", kind, plain, plain, negative, [], cost)]
    full, rt, positive_maps, curves, probe_cost = probe(toy, positive, negative, steps)
    rows.append(scores("K = 0 (full negative)", kind, full, plain, negative, [0] * seeds, probe_cost))
    for k in FIXED[1:]:
        images, cost = run(toy, cfg_node(toy, steps, start=k), p, n, steps)
        rows.append(scores(f"K = {k}", kind, images, plain, negative, [k] * seeds, cost))
    window, cost = run(toy, cfg_node(toy, steps, start=WINDOW[0], end=WINDOW[1]), p, n, steps)
    rows.append(scores(f"window {WINDOW[0]}–{WINDOW[1]}", kind, window, plain, negative, [WINDOW[0]] * seeds, cost))
    onsets = [gates.onset(rt[i], ONSET_FRACTION) for i in range(seeds)]
    locks = [gates.lock_on(positive_maps[:, i], LOCK_ON_RHO) for i in range(seeds)]
    for name, chosen in (("(a) r_t onset, probe", onsets), ("(b) lock-on, probe", locks)):
        images, cost = per_seed(toy, p, n, steps, chosen, lambda start: cfg_node(toy, steps, start=start))
        rows.append(scores(name, kind, images, plain, negative, chosen, probe_cost + cost))
    for epsilon in EPSILONS:
        images, chosen, costs = [], [], []
        for i in range(seeds):
            single = Toy([i + 1], (toy.model, toy.clip, toy.vae))
            online.steps.clear()
            image, cost = run(single, cfg_node(single, steps, auto_start=epsilon), p, n, steps)
            images.append(image)
            costs.append(cost)
            chosen.append(online.steps[-1] if online.steps else None)
        rows.append(scores(f"(c) online, ε = {epsilon:g}", kind, torch.cat(images), plain, negative, chosen,
                           float(np.mean(costs))))
    rows += end_rows(toy, positive, negative, p, n, kind, plain, steps)
    related = " ".join(f"{c.word}→{c.related}" for c in curves)
    return [{**row, "related": related} for row in rows], rt


def end_rows(toy: Toy, positive: str, negative: str, p, n, kind: str, plain, steps: int) -> list:
    """Eq. 8 at s⁻ = END_SCALE for the whole run (a captured probe), and stopped at the automatic end its r_t gives
    (p, n: the two prompts encoded)."""
    eq8 = lambda end=None: cfg_node(toy, steps, mode="independent", end=end, scale=END_SCALE)  # noqa: E731
    full, rt, _, _, probe_cost = probe(toy, positive, negative, steps, eq8())
    ends = [automatic_end(rt[i]) for i in range(len(rt))]
    images, cost = per_seed(toy, p, n, steps, ends, eq8)
    name = f"eq. 8, s⁻ = {END_SCALE:g}"
    return [scores(name, kind, full, plain, negative, [0] * len(rt), probe_cost),
            scores(f"{name}, automatic end (probe)", kind, images, plain, negative, ends, probe_cost + cost)]


def shapes(toy: Toy, step_counts: list[int], probed: dict[int, dict[str, list]]) -> list[dict]:
    """Mean ± std over pairs × seeds of the noun and adjective r_t, per step count; peak as a fraction of the run.
    ``probed``: the curves by group of step counts already probed (the gate table's); the others are probed here."""
    rows = []
    for steps in step_counts:
        curves = probed.get(steps)
        if curves is None:
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
    toy.model = toy.model.clone()
    toy.model.set_model_unet_function_wrapper(RECORDER)
    rows, curves = [], {"noun": [], "adjective": []}
    for positive, negative, kind in GATE_PAIRS:
        pair, rt = pair_rows(toy, positive, negative, kind, args.steps, args.seeds, online)
        rows += [{"positive": positive, "negative": negative, **r} for r in pair]
        curves[kind].extend(rt)
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
    shape_rows = shapes(toy, [*args.shape_steps, args.steps], {args.steps: curves})
    write_csv(args.out / "shapes.csv", shape_rows)
    print("\n| steps | group | r_t peak step | peak as a fraction of the run | r₀ | peak | last | std at the peak |")
    print("|---|---|---|---|---|---|---|---|")
    for r in shape_rows:
        print(f"| {r['steps']} | {r['type']} | {r['peak_step']} | {r['peak_fraction']:.0%} | {r['r0']:.3f} | "
              f"{r['peak']:.3f} | {r['last']:.3f} | {r['std_at_peak']:.3f} |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
