"""Import direction is the architecture: guidance/ and attention/ use only torch, numpy, einops, safetensors,
Pillow (all of which come with ComfyUI) and the standard library; the toy dataset and detectors only numpy; nodes/
is the adapter to ComfyUI (with the toy model's builder and the headless runner in toy/)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"torch", "numpy", "einops", "safetensors", "PIL"}  # Pillow draws the pictures' text


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", ["guidance", "attention"])
def test_pure_packages_import_no_comfyui(package):
    for path in (ROOT / package).rglob("*.py"):
        foreign = imported_roots(path) - RUNTIME - set(sys.stdlib_module_names)
        assert not foreign, f"{path.relative_to(ROOT)} imports {foreign}"


def test_the_toy_dataset_and_detectors_are_pure_numpy():
    for name in ("data.py", "detect.py"):
        foreign = imported_roots(ROOT / "toy" / name) - {"numpy"} - set(sys.stdlib_module_names)
        assert not foreign, f"toy/{name} imports {foreign}"


def test_the_pack_imports_without_comfyui():
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('pack', {str(ROOT / '__init__.py')!r}, "
        f"submodule_search_locations=[{str(ROOT)!r}])\n"
        "pack = importlib.util.module_from_spec(spec); sys.modules['pack'] = pack; spec.loader.exec_module(pack)\n"
        "import pack.guidance, pack.attention\n"
        "comfy = [m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api', 'nodes')]\n"
        "assert not comfy, comfy\n"
        "assert callable(pack.comfy_entrypoint) and pack.WEB_DIRECTORY\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
