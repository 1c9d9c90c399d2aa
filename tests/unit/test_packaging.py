"""What the ComfyUI Registry, comfy-cli and ComfyUI-Manager read: pyproject, requirements, the web directory."""

import re

import harness
import pytest
import tomllib

ROOT = harness.PACK_ROOT
COMFYUI_HAS = {"torch", "numpy", "safetensors", "einops"}


def test_pyproject_has_what_the_registry_reads():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["project"]["version"])
    assert (ROOT / project["project"]["license"]["file"]).read_text().startswith("                    GNU GENERAL")
    assert project["project"]["dependencies"] == []
    comfy = project["tool"]["comfy"]
    assert {"PublisherId", "DisplayName", "Icon", "requires-comfyui"} <= comfy.keys()
    assert comfy["Icon"].endswith("web/icon.svg") and (ROOT / "web" / "icon.svg").exists()


def requirement_names(text: str) -> set[str]:
    lines = (line.split("#")[0].strip() for line in text.splitlines())
    return {re.split(r"[<>=!~\[; ]", line)[0].lower() for line in lines if line}


def test_requirements_add_nothing_comfyui_lacks():
    ours = requirement_names((ROOT / "requirements.txt").read_text())
    assert ours <= COMFYUI_HAS
    comfyui = harness.find_comfyui()
    if comfyui is None:
        pytest.skip("ComfyUI not found: its requirements.txt cannot be compared")
    assert requirement_names((comfyui / "requirements.txt").read_text()) >= COMFYUI_HAS


def test_the_web_extension_imports_the_frontend_three_levels_up():
    """web/js/x.js is served at /extensions/<pack>/js/x.js: ../../../scripts/ holds the frontend's app and api."""
    for script in (ROOT / "web" / "js").glob("*.js"):
        imports = re.findall(r'from "([^"]+)"', script.read_text())
        assert "../../../scripts/app.js" in imports, script.name
        assert all(path in ("../../../scripts/app.js", "../../../scripts/api.js") for path in imports), script.name
