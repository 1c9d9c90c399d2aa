"""What a user reads about each node: a tooltip on every input and output, and a help page in the layout the
frontend asks for first (web/docs/<NodeId>/en.md) that explains every input and output."""

import re

import harness
import pytest

DOCS = harness.PACK_ROOT / "web" / "docs"
NODE_IDS = ["NegativeGuidanceGuider", "NegativeGuidanceCFG", "NegativeTerm", "AttentionNegativeTerm",
            "AttentionCapture", "AttentionRt", "ToyConceptModelLoader"]


@pytest.fixture(scope="module")
def infos(comfy):
    """/object_info's entry of every node the pack registers, by node id."""
    return {cls.GET_NODE_INFO_V1()["name"]: cls.GET_NODE_INFO_V1() for cls in harness.module("nodes").usable_nodes()}


def test_the_pack_registers_the_nodes_this_file_checks(infos):
    assert sorted(infos) == sorted(NODE_IDS)


def test_every_input_and_output_has_a_tooltip(infos):
    missing = []
    for node_id, info in infos.items():
        for group in ("required", "optional"):
            for name, spec in info["input"].get(group, {}).items():
                if not (len(spec) > 1 and str(spec[1].get("tooltip", "")).strip()):
                    missing.append(f"{node_id} input {name}")
        tooltips = info.get("output_tooltips") or [None] * len(info["output"])
        assert len(tooltips) == len(info["output_name"]), node_id
        missing += [f"{node_id} output {name}" for name, tip in zip(info["output_name"], tooltips, strict=True)
                    if not (tip or "").strip()]
    assert missing == []


def test_help_pages_sit_where_the_frontend_asks_first():
    """The frontend fetches /extensions/<pack>/docs/<NodeId>/<locale>.md, then <NodeId>.md after a 404."""
    assert sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")) == sorted(
        f"{node_id}/en.md" for node_id in NODE_IDS)


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_every_help_page_explains_every_input_and_output(infos, node_id):
    page = (DOCS / node_id / "en.md").read_text(encoding="utf-8")
    info = infos[node_id]
    assert page.startswith(f"# {info['display_name']}\n")
    inputs = [name for group in ("required", "optional") for name in info["input"].get(group, {})]
    for section, names in (("Inputs", inputs), ("Outputs", info["output_name"])):
        body = re.search(rf"^## {section}\n(.*?)(?=^## |\Z)", page, re.S | re.M)
        assert body, f"{node_id}: no '## {section}' section"
        rows = dict(re.findall(r"^\| `([^`]+)` \| (.+) \|$", body.group(1), re.M))
        assert list(rows) == list(names), f"{node_id}: {section} table rows are not the node's {section.lower()}"
        assert all(len(text) > 20 for text in rows.values()), node_id
        if not names:
            assert "None." in body.group(1)
