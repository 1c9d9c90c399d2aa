"""The example workflows: up to date with tests/support/examples.py, every node and input name still in the pack
(the rename guard for shared workflows), and their API form runs offline as it is, on the toy concept model."""

import json
from pathlib import Path

import examples
import harness
import pytest
import workflows

EXAMPLES = sorted((harness.PACK_ROOT / "example_workflows").glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_five_examples_and_they_are_up_to_date(comfy):
    assert [path.stem for path in EXAMPLES] == list(examples.EXAMPLES)
    for path in EXAMPLES:
        fresh = workflows.to_ui(examples.EXAMPLES[path.stem](), workflows.node_info)
        assert load(path) == json.loads(json.dumps(fresh)), f"{path.name}: run python tests/support/examples.py"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_node_and_input_an_example_uses_exists(comfy, path):
    """Rename guard: a renamed node id or input breaks shared workflows, so it must break this test first."""
    import nodes

    for node in load(path)["nodes"]:
        assert node["type"] in nodes.NODE_CLASS_MAPPINGS, f"{path.name}: node {node['type']} no longer exists"
        info = workflows.node_info(node["type"])
        names = dict(workflows.input_specs(info))
        for entry in node["inputs"]:
            assert entry["name"] in names, f"{path.name}: {node['type']} has no input {entry['name']}"
        assert len(node["widgets_values"]) == len(workflows.widget_slots(info)), f"{path.name}: {node['type']}"
        assert [o["name"] for o in node["outputs"]] == list(info["output_name"]), f"{path.name}: {node['type']}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_the_api_form_of_every_example_runs_offline_on_the_toy_model(run_graph, path):
    history, _ = run_graph(workflows.to_api(load(path), workflows.node_info))
    assert any("images" in ui for ui in history.values())
