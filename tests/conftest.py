"""Test tiers: unit (pure torch, no ComfyUI), comfy (ComfyUI in process, tiny models), server (live ComfyUI),
browser (headless Chromium on a live ComfyUI).

The pack is importable as ``negative_guidance`` for the unit tier. Where ComfyUI is not found, every tier but unit
is skipped, and the run says so loudly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

import locate  # noqa: E402

COMFYUI = locate.find_comfyui()
TIERS = ("unit", "comfy", "server", "browser")
MISSING = "ComfyUI NOT FOUND: set COMFYUI_PATH (see README); the comfy, server and browser tiers are SKIPPED"


def _register(name: str, folder: Path) -> None:
    """Import ``folder`` as the package ``name`` (this checkout's folder name may not be importable, and its root
    must not go on sys.path, where its nodes/ would shadow ComfyUI's nodes module)."""
    init, search = folder / "__init__.py", [str(folder)]
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=search)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register("negative_guidance", ROOT)
_register("experiments", ROOT / "experiments")  # the study runner, run as python -m experiments from ROOT


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
