"""What the ComfyUI Registry, comfy-cli and ComfyUI-Manager read: pyproject, requirements, the web directory."""

import re

import harness
import pytest
import tomllib

ROOT = harness.PACK_ROOT
COMFYUI_HAS = {"torch", "numpy", "safetensors", "einops"}


def test_pyproject_has_what_the_registry_reads():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["project"]["version"])
    licence = (ROOT / project["project"]["license"]["file"]).read_text(encoding="utf-8")
    assert licence.startswith("                    GNU GENERAL")
    assert project["project"]["dependencies"] == []
    comfy = project["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon", "requires-comfyui"} <= comfy.keys()
    assert comfy["Icon"].endswith("web/icon.svg") and (ROOT / "web" / "icon.svg").exists()


def requirement_names(text: str) -> set[str]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return {re.split(r"[<>=!~\[; ]", line)[0].lower() for line in lines if line}


def test_requirements_add_nothing_comfyui_lacks():
    ours = requirement_names((ROOT / "requirements.txt").read_text(encoding="utf-8"))
    assert ours <= COMFYUI_HAS
    comfyui = harness.find_comfyui()
    if comfyui is None:
        pytest.skip("ComfyUI not found: its requirements.txt cannot be compared")
    assert requirement_names((comfyui / "requirements.txt").read_text(encoding="utf-8")) >= COMFYUI_HAS


def test_the_web_extension_imports_the_frontend_three_levels_up():
    """web/js/x.js is served at /extensions/<pack>/js/x.js: ../../../scripts/ holds the frontend's app and api."""
    for script in (ROOT / "web" / "js").glob("*.js"):
        imports = re.findall(r'from "([^"]+)"', script.read_text(encoding="utf-8"))
        assert "../../../scripts/app.js" in imports, script.name
        assert all(path in ("../../../scripts/app.js", "../../../scripts/api.js") for path in imports), script.name


def text_io_without_encoding(path) -> list[int]:
    """Lines of calls that read or write text without naming its encoding: open(), .open() in a text mode,
    .read_text(), .write_text() (ruff's PLW1514 misses some of them)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        receiver = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        mode = next((a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)), "r")
        mode = next((k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)),
                    mode)
        if name in ("read_text", "write_text") or (name == "open" and receiver not in ("Image", "zipfile")
                                                   and "b" not in mode):
            found.append(node.lineno)
    return found


def test_every_file_read_or_written_names_its_encoding():
    offenders = {str(p.relative_to(ROOT)): lines for p in ROOT.rglob("*.py")
                 if ".git" not in p.parts and (lines := text_io_without_encoding(p))}
    assert offenders == {}


def test_the_linter_passes():
    """ruff with pyproject's rules (PLW1514 among them)."""
    import subprocess
    import sys

    if subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode != 0:
        pytest.skip("RUFF NOT INSTALLED: the lint test is SKIPPED (scripts/test.sh installs it)")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", str(ROOT)],
                            capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0, result.stdout


def test_files_are_read_and_written_as_utf8_under_a_non_utf8_default(tmp_path):
    """Windows' default is cp1252; here the C locale's ASCII default: exports, CSVs, prompt files and templates with
    'café' and '猫' must still round-trip."""
    import os
    import subprocess
    import sys

    script = tmp_path / "roundtrip.py"
    script.write_text(ROUNDTRIP.replace("SUPPORT", str(ROOT / "tests" / "support")).replace(
        "SCRIPTS", str(ROOT / "scripts")).replace("TMP", str(tmp_path)), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LANG"}
    env |= {"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, encoding="utf-8", env=env)
    assert result.returncode == 0, result.stderr[-3000:]


ROUNDTRIP = r"""
import json, locale, sys
from pathlib import Path
sys.path[:0] = ["SUPPORT", "SCRIPTS"]
assert locale.getpreferredencoding(False).upper() in ("ANSI_X3.4-1968", "ASCII"), locale.getpreferredencoding(False)
import harness, torch
store_module, export = harness.module("attention.store"), harness.module("attention.export")
store = store_module.AttentionStore(2**20)
store.begin_step(0, 1.0)
store.add(store_module.LayerId(("input", 1), 0, (2, 2)), "negative", torch.ones(1, 2, 2, 2))
store.flush()
data = {"steps": [0], "sigmas": [1.0], "curves": {"café": {"related": "猫", "r": [1.0], "per_image": [[1.0]]}}}
paths = export.write_exports("TMP/rt", data, store)
assert json.loads(Path(paths[0]).read_text(encoding="utf-8"))["curves"]["café"]["related"] == "猫"
assert "café,猫" in Path(paths[1]).read_text(encoding="utf-8")
jobs = harness.module("experiments.jobs")
pairs = Path("TMP/pairs.csv")
pairs.write_text("positive,negative,type\nun café,猫,noun\n", encoding="utf-8")
assert jobs.load_pairs(pairs) == [{"positive": "un café", "negative": "猫", "type": "noun"}]
template = Path("TMP/template.json")
template.write_text('{"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "café {{positive}}"}}, '
                    '"2": {"class_type": "AttentionRt", "inputs": {}}}', encoding="utf-8")
assert jobs.load_template(template)["1"]["inputs"]["text"] == "café {{positive}}"
"""
