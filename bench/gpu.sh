#!/usr/bin/env bash
# The GPU benchmarks, in one run (for a lent GPU machine): guidance, capture and attention-space negatives on
# SD1.5 and the full-width SD3.5/Flux DiTs, in bf16 and fp16 at 1024² (SD1.5 at 512²). Figures go to
# docs/benchmarks.md by hand. Usage: bash bench/gpu.sh [--rounds 3]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh >/dev/null
for dtype in bf16 fp16; do
  for model in sd15 sd35 flux; do
    size=1024; [ "$model" = sd15 ] && size=512
    "$PY" bench/bench_guidance.py --model "$model" --device cuda --dtype "$dtype" --size "$size" --steps 6 "$@"
    "$PY" bench/bench_capture.py --model "$model" --device cuda --dtype "$dtype" --size "$size" --steps 6 "$@"
    "$PY" bench/bench_nag.py --model "$model" --device cuda --dtype "$dtype" --size "$size" --steps 6 "$@"
  done
done
