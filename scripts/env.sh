#!/usr/bin/env bash
# Sourced by test.sh and demo.sh: find or fetch ComfyUI, build or reuse the test venv; sets COMFY and PY.
# ComfyUI: $COMFYUI_PATH, else the ComfyUI this pack is installed in, else
# ~/.cache/comfyui-negative-guidance/ComfyUI-<release>, else a clone of that release into the cache. The release is
# $COMFYUI_RELEASE, one of scripts/harness.py's RELEASES (default v0.33.0, floor v0.3.64).
# Python: $NEGATIVE_GUIDANCE_PYTHON if set, else a venv in the cache built from that ComfyUI's requirements.txt, one
# venv per requirements (first run: a few minutes).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE=${NEGATIVE_GUIDANCE_CACHE:-$HOME/.cache/comfyui-negative-guidance}
read -r RELEASE COMMIT < <(python3 scripts/harness.py release)
mkdir -p "$CACHE"

COMFY=$(python3 scripts/harness.py)
if [ -z "$COMFY" ]; then
  echo "== no ComfyUI found; cloning ComfyUI $RELEASE ($COMMIT) into $CACHE/ComfyUI-$RELEASE"
  if git clone --quiet https://github.com/comfyanonymous/ComfyUI "$CACHE/ComfyUI.partial" \
     && git -C "$CACHE/ComfyUI.partial" checkout --quiet "$COMMIT"; then
    mv "$CACHE/ComfyUI.partial" "$CACHE/ComfyUI-$RELEASE"
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
  # The CPU-loadable set: torch 2.14.1 and torchvision 0.29.1 (CUDA builds that run on the CPU) and torchaudio
  # 2.11.1, which imports beside them (ComfyUI since 2026 imports it at start); the rest as ComfyUI pins it.
  CONSTRAINTS=$'torch==2.14.1\ntorchvision==0.29.1\ntorchaudio==2.11.1'
  REQS=$( { echo "$CONSTRAINTS requests pytest"; [ -n "$COMFY" ] && cat "$COMFY/requirements.txt"; } | sha256sum | cut -c1-12)
  VENV=$CACHE/venv-$REQS
  PY=$VENV/bin/python
  if [ ! -f "$VENV/.complete" ]; then
    echo "== building the venv in $VENV (first run: a few minutes)"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    echo "$CONSTRAINTS" > "$VENV/constraints.txt"
    "$PY" -m pip install --quiet -c "$VENV/constraints.txt" torch torchvision requests pytest
    if [ -n "$COMFY" ]; then
      "$PY" -m pip install --quiet -c "$VENV/constraints.txt" -r "$COMFY/requirements.txt"
    else
      "$PY" -m pip install --quiet safetensors einops numpy
    fi
    touch "$VENV/.complete"
  fi
fi

export COMFYUI_PATH=${COMFY}
