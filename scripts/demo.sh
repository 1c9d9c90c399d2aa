#!/usr/bin/env bash
# The main job: the offline toy demo. No GPU, no download, no server; the same environment as the tests.
#   bash scripts/demo.sh [--out toy_demo] [--seed 1]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
if [ -z "$COMFY" ]; then
  echo "ComfyUI not found: set COMFYUI_PATH to a ComfyUI checkout (scripts/env.sh says where else it looks)" >&2
  exit 1
fi
exec "$PY" scripts/demo.py "$@"
