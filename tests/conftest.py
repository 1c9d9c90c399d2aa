"""Test tiers: unit (pure torch, no ComfyUI), comfy (ComfyUI in process, tiny models), server (live ComfyUI),
browser (headless Chromium on a live ComfyUI).

The pack is one package under the name ComfyUI's loader gives it (scripts/harness.py); tests reach its modules
through tests/support/pack.py. Where ComfyUI is not found, every tier but unit is skipped, and the run says so loudly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "support"), str(ROOT / "scripts")]

import harness  # noqa: E402

harness.load_pack()
COMFYUI = harness.find_comfyui()
TIERS = ("unit", "comfy", "server", "browser")
MISSING = "ComfyUI NOT FOUND: set COMFYUI_PATH (see README); the comfy, server and browser tiers are SKIPPED"


def pytest_report_header(config):
    return f"ComfyUI: {COMFYUI}" if COMFYUI else f"!!! {MISSING} !!!"


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(item.fspath).relative_to(ROOT / "tests").parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        if tier != "unit" and COMFYUI is None:
            item.add_marker(pytest.mark.skip(reason=MISSING))


def pytest_terminal_summary(terminalreporter):
    if COMFYUI is None:
        terminalreporter.write_sep("!", MISSING, red=True, bold=True)
