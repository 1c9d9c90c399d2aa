"""Where one step's time goes with attention-space negatives (AttentionNegativeTerm, NAG) at cfg 1: a CPU profile of
one sampling step of the cfg-1 KSampler without a negative, and of NegativeGuidanceCFG with 1 and with 2 terms.

    python bench/profile_nag.py --model flux [--size 512] [--rounds 1] [--threads 2]

The models and configurations are bench/bench_nag.py's. Each configuration runs one warm-up step, then ``--rounds``
profiled steps, interleaved; each figure is its fastest round's (a shared machine's noise only adds time). Self CPU
time is grouped by the outermost aten op it runs under: ``aten::linear`` (the token-wise weights), attention (the
kernel's scaled_dot_product_attention, or on CPU ComfyUI's sub-quadratic baddbmm / softmax / bmm, and the matmul /
logsumexp of the merged form's fp32 attention over each text's keys), and the rest (RoPE, norms, activations, cat and
copies, the merge and NAG's combine).

The floor. Every token of a joint DiT's stream goes through each block's token-wise weights: Flux's double blocks
give text and image tokens weights of the same shapes (qkv, proj, a 4× MLP), and its single blocks run on
cat(txt, img), so a block's weight FLOPs are c·(N + T⁺ + k·T⁻) for N image tokens, the prompt's T⁺ and k negatives
of T⁻ tokens each (T5 is padded to 256). A negative's stream is projected as its own prompt would be, so the linear
layers' work grows by (N + T⁺ + k·T⁻)/(N + T⁺): 1.20 (k = 1), 1.40 (k = 2) at 512² (N = 1024), 1.06 and 1.12 at
1024² (N = 4096). The profiler's FLOP count of the linear ops measures it (with txt_in's 4096→3072 per text token and
the per-sample modulation). Each attention's (N + T⁺)² query-key pairs gain, per negative, its stream's T⁻ queries
over [txt⁻, img] and the image queries over its T⁻ keys (Z⁻): the attention floor is 1 + k·T⁻(T⁻ + 2N)/(N + T⁺)².
The step's floor weighs the two by the plain step's self time: 1 + (linear · (FLOPs ratio − 1) + attention ·
(attention floor − 1)) / total, the negatives' necessary work at the plain step's speed, nothing else added.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench_nag  # puts tests/support and scripts on the path, as bench_models and comfy_helpers need

models, comfy_helpers = bench_nag.models, bench_nag.comfy_helpers

ATTENTION = ("aten::scaled_dot_product_attention", "aten::baddbmm", "aten::einsum", "aten::matmul", "aten::bmm",
             "aten::softmax", "aten::logsumexp")
GROUPS = ("linear layers", "attention", "rest")
FLOPS = ("linear layers flops", "attention flops")  # the profiler's count: mm, addmm, bmm, baddbmm
CHOSEN = {bench_nag.REFERENCE: 0, "NegativeGuidanceCFG + 1 AttentionNegativeTerm, cfg 1": 1,
          "NegativeGuidanceCFG + 2 AttentionNegativeTerms, cfg 1": 2}  # name → k, the negatives


def group(event) -> str:
    """The group of an event's self time: that of the outermost aten op above it (itself included)."""
    outer = event
    while event.cpu_parent is not None:
        event = event.cpu_parent
        outer = event if event.name.startswith("aten::") else outer
    if outer.name == "aten::linear":
        return "linear layers"
    return "attention" if outer.name in ATTENTION else "rest"


def profile(run) -> dict:
    """Seconds of self CPU time and FLOPs per group, and the step's wall seconds, for one run of ``run``."""
    import time

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
    found = dict.fromkeys(GROUPS, 0.0) | dict.fromkeys(FLOPS, 0) | {"wall": wall}
    for event in prof.events():
        kind = group(event)
        found[kind] += event.self_cpu_time_total / 1e6
        if f"{kind} flops" in found:
            found[f"{kind} flops"] += event.flops or 0
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models.add_arguments(parser, size=512, steps=1, rounds=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="bench_")), cpu=args.device == "cpu")
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, p, n, n2, latent, noise = bench_nag.load(args.model, args.size, args.dtype, args.device, args.frames)
    configs = {name: c for name, c in bench_nag.configurations(model, n, n2).items() if name in CHOSEN}
    runs = {name: bench_nag.runner(m, cfg, p, negative, noise, latent, args.steps) for name, (m, cfg, negative) in
            configs.items()}
    for run in runs.values():  # warm-up
        run()
    found = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            found[name].append(profile(run))
    best = {name: {key: min(r[key] for r in rounds) for key in rounds[0]} for name, rounds in found.items()}
    image, text, negative = (latent.shape[-1] // 2) * (latent.shape[-2] // 2), p[0][0].shape[1], n[0][0].shape[1]
    print(f"\n{args.model} ({args.size}², {args.dtype}), 1 euler step, N = {image} image tokens, T⁺ = {text}, "
          f"T⁻ = {negative}; each the fastest of {args.rounds} profiled steps, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print("| configuration | step (s) | linear layers (s) | attention (s) | rest (s) | tokens ratio | "
          "linear FLOPs ratio | linear time ratio | attention floor | attention FLOPs ratio | attention time ratio | "
          "step ratio | step floor |")
    print("|---" * 13 + "|")
    base = best[bench_nag.REFERENCE]
    total = sum(base[g] for g in GROUPS)
    for name, r in best.items():
        k, joint = CHOSEN[name], image + text
        tokens, floor = (joint + k * negative) / joint, 1 + k * negative * (negative + 2 * image) / joint ** 2
        flops, attention = (r[f] / base[f] for f in FLOPS)
        step_floor = 1 + (base["linear layers"] * (flops - 1) + base["attention"] * (floor - 1)) / total
        print(f"| {name} | {r['wall']:.2f} | {r['linear layers']:.2f} | {r['attention']:.2f} | {r['rest']:.2f} | "
              f"{tokens:.3f}× | {flops:.3f}× | {r['linear layers'] / base['linear layers']:.3f}× | {floor:.3f}× | "
              f"{attention:.3f}× | {r['attention'] / base['attention']:.3f}× | {r['wall'] / base['wall']:.3f}× | "
              f"{step_floor:.3f}× |")
    print("\nThe self time each configuration adds to the reference's, by group (s, share):")
    for name, r in list(best.items())[1:]:
        extra = sum(r[g] for g in GROUPS) - total
        parts = ", ".join(f"{g} {r[g] - base[g]:+.2f} ({(r[g] - base[g]) / extra:.0%})" for g in GROUPS)
        print(f"- {name}: {extra:+.2f} s: {parts}")


if __name__ == "__main__":
    main()
