#!/usr/bin/env bash
# Sourced by test.sh and demo.sh: find or fetch ComfyUI, build or reuse the test venv; sets COMFY and PY.
# ComfyUI: $COMFYUI_PATH, else the ComfyUI this pack is installed in, else ~/.cache/comfyui-negative-guidance/ComfyUI,
# else a clone of the pinned commit into that cache. Python: $NEGATIVE_GUIDANCE_PYTHON if set, else a venv in the
# cache built from ComfyUI's requirements (first run: a few minutes).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE=${NEGATIVE_GUIDANCE_CACHE:-$HOME/.cache/comfyui-negative-guidance}
COMMIT=$(python3 -c 'import sys; sys.path.insert(0, "scripts"); import harness; print(harness.PINNED_COMMIT)')
mkdir -p "$CACHE"

COMFY=$(python3 scripts/harness.py)
if [ -z "$COMFY" ]; then
  echo "== no ComfyUI found; cloning the pinned commit $COMMIT into $CACHE/ComfyUI"
  if git clone --quiet https://github.com/comfyanonymous/ComfyUI "$CACHE/ComfyUI.partial" \
     && git -C "$CACHE/ComfyUI.partial" checkout --quiet "$COMMIT"; then
    mv "$CACHE/ComfyUI.partial" "$CACHE/ComfyUI"
  else
    rm -rf "$CACHE/ComfyUI.partial"
  fi
  COMFY=$(python3 scripts/harness.py)
fi
if [ -z "$COMFY" ]; then
  echo "!! ======================================================================== !!"
  echo "!! ComfyUI NOT FOUND: every test that needs ComfyUI will be SKIPPED.        !!"
  echo "!! Set COMFYUI_PATH to a ComfyUI checkout to run them.                      !!"
  echo "!! ======================================================================== !!"
fi

if [ -n "${NEGATIVE_GUIDANCE_PYTHON:-}" ]; then
  PY=$NEGATIVE_GUIDANCE_PYTHON
else
  VENV=$CACHE/venv
  PY=$VENV/bin/python
  REQS=$( { echo "torch==2.14.1 torchvision==0.29.1 requests pytest"; [ -n "$COMFY" ] && cat "$COMFY/requirements.txt"; } | sha256sum | cut -c1-16)
  if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$REQS" ]; then
    echo "== building the venv in $VENV (first run: a few minutes)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$CACHE/constraints.txt"
    "$PY" -m pip install --quiet -c "$CACHE/constraints.txt" torch==2.14.1 torchvision==0.29.1 requests pytest
    if [ -n "$COMFY" ]; then
      "$PY" -m pip install --quiet -c "$CACHE/constraints.txt" -r "$COMFY/requirements.txt"
      "$PY" -m pip uninstall --quiet -y torchaudio  # a CUDA build that fails to load on CPU machines; ComfyUI runs without it
    else
      "$PY" -m pip install --quiet safetensors einops numpy
    fi
    echo "$REQS" > "$VENV/.stamp"
  fi
fi

export COMFYUI_PATH=${COMFY}
