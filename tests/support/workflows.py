"""UI-format workflows (what ComfyUI's frontend saves and loads) to and from API-format prompts.

Widget values sit in a UI node's ``widgets_values`` in the order of the node's widget inputs; an INT input with
``control_after_generate`` (a seed) is followed by its control value ("fixed", "randomize", ...). Note and
MarkdownNote nodes exist only in the frontend (virtual nodes, never queued): ``to_ui`` writes them, ``to_api`` skips
them as the frontend's graphToPrompt does.
"""

from __future__ import annotations

from collections.abc import Callable

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
FRONTEND_ONLY = ("Note", "MarkdownNote")
NOTE_WIDTH = 420
NODE_WIDTH, LEAST_HEIGHT, TITLE, GAP = 320, 220, 30, 10
DRAWN_BY_THE_PACK = {"NegativeGuidanceCFG": 110, "NegativeGuidanceGuider": 110, "AttentionRt": 164}  # web/js: the
# evaluations readout (34, and its text, up to 7 lines, spills some 70 below the node), the r_t plot
NodeInfo = Callable[[str], dict]


def node_info(class_type: str) -> dict:
    """/object_info's entry for a node, from the ComfyUI running in this process."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[class_type]
    if hasattr(cls, "GET_NODE_INFO_V1"):
        return cls.GET_NODE_INFO_V1()
    inputs = cls.INPUT_TYPES()
    return {"input": inputs, "input_order": {group: list(spec) for group, spec in inputs.items()},
            "output": list(cls.RETURN_TYPES), "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES))}


def input_specs(info: dict) -> list[tuple[str, list]]:
    """(name, spec) of every input, required first, in the node's order."""
    order = info.get("input_order") or {group: list(spec) for group, spec in info["input"].items()}
    return [(name, info["input"][group][name]) for group in ("required", "optional") for name in order.get(group, [])]


def is_widget(spec: list) -> bool:
    """A widget input: a combo or a widget type; a V3 MultiType input ("FLOAT,INT") by its first type, which the
    frontend draws as a widget (LTXVEmptyLatentAudio's frame_rate)."""
    kind, options = spec[0], spec[1] if len(spec) > 1 else {}
    return (isinstance(kind, list) or kind.split(",")[0] in WIDGET_TYPES) and not options.get("forceInput")


def widget_slots(info: dict) -> list[str | None]:
    """The names behind ``widgets_values``, None where a seed's control value sits."""
    slots = []
    for name, spec in input_specs(info):
        if is_widget(spec):
            slots.append(name)
            if len(spec) > 1 and spec[1].get("control_after_generate"):
                slots.append(None)
    return slots


def input_type(spec: list) -> str:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def widget_values(inputs: dict, info: dict) -> list:
    """``widgets_values`` for API inputs: a linked or absent widget keeps its default, a seed's control is 'fixed'."""
    specs = dict(input_specs(info))
    values = []
    for name in widget_slots(info):
        value = "fixed" if name is None else inputs.get(name, [])
        values.append(specs[name][1].get("default") if isinstance(value, list) else value)
    return values


def node_height(class_type: str, info: dict) -> int:
    """The height the frontend gives a node (as measured in v0.33's frontend, 1.48): 20 per row of input and output
    sockets, 24 per widget, 30 more per multiline text box, and what the pack's JavaScript draws in it; at least
    LEAST_HEIGHT, the size to_ui writes."""
    specs = [spec for _, spec in input_specs(info)]
    sockets = max(sum(not is_widget(spec) for spec in specs), len(info["output"]))
    multiline = sum(is_widget(spec) and len(spec) > 1 and bool(spec[1].get("multiline")) for spec in specs)
    drawn = 14 + 20 * sockets + 24 * len(widget_slots(info)) + 30 * multiline + DRAWN_BY_THE_PACK.get(class_type, 0)
    return max(LEAST_HEIGHT, drawn)


def note_node(node_id: int, text: str, row: int) -> dict:
    """A MarkdownNote (frontend only) at the left of the graph."""
    return {"id": node_id, "type": "MarkdownNote", "pos": [40, 40 + 420 * row], "size": [NOTE_WIDTH, 400],
            "flags": {}, "order": 0, "mode": 0, "inputs": [], "outputs": [], "properties": {},
            "widgets_values": [text], "color": "#432", "bgcolor": "#653"}


def to_ui(prompt: dict, info: NodeInfo, notes: list[str] = ()) -> dict:
    """An API-format prompt as a UI-format workflow, laid out in columns by depth, each column's nodes stacked by
    their heights in the frontend, with ``notes`` as MarkdownNote nodes in a column of their own at the left."""
    depth: dict[str, int] = {}

    def level(node_id: str) -> int:
        if node_id not in depth:
            links = [v for v in prompt[node_id]["inputs"].values() if isinstance(v, list)]
            depth[node_id] = 1 + max((level(v[0]) for v in links), default=-1)
        return depth[node_id]

    tops: dict[int, int] = {}
    nodes, links = {}, []
    for node_id in sorted(prompt, key=int):
        data, meta = prompt[node_id], info(prompt[node_id]["class_type"])
        column = level(node_id)
        top = tops.get(column, 40)
        tops[column] = top + node_height(data["class_type"], meta) + TITLE + GAP
        nodes[node_id] = {
            "id": int(node_id), "type": data["class_type"],
            "pos": [40 + (NOTE_WIDTH + 40 if notes else 0) + (NODE_WIDTH + 40) * column, top],
            "size": [NODE_WIDTH, LEAST_HEIGHT], "flags": {}, "order": 0, "mode": 0, "inputs": [],
            "outputs": [{"name": name, "type": kind, "links": [], "slot_index": i}
                        for i, (name, kind) in enumerate(zip(meta["output_name"], meta["output"], strict=True))],
            "properties": {"Node name for S&R": data["class_type"]},
            "widgets_values": widget_values(data["inputs"], meta),
        }
    for order, node_id in enumerate(sorted(prompt, key=lambda n: (depth[n], int(n)))):
        nodes[node_id]["order"] = order
    for node_id, data in sorted(prompt.items(), key=lambda item: int(item[0])):
        for name, spec in input_specs(info(data["class_type"])):
            value = data["inputs"].get(name)
            if not isinstance(value, list) and is_widget(spec):
                continue
            entry = {"name": name, "type": input_type(spec), "link": None}
            if is_widget(spec):
                entry["widget"] = {"name": name}
            if isinstance(value, list):
                link_id = len(links) + 1
                source = nodes[value[0]]
                links.append([link_id, int(value[0]), value[1], int(node_id), len(nodes[node_id]["inputs"]),
                              source["outputs"][value[1]]["type"]])
                source["outputs"][value[1]]["links"].append(link_id)
                entry["link"] = link_id
            nodes[node_id]["inputs"].append(entry)
    last = max(map(int, prompt))
    extra_nodes = [note_node(last + 1 + i, text, i) for i, text in enumerate(notes)]
    for order, node in enumerate(extra_nodes, start=len(nodes)):
        node["order"] = order
    return {"last_node_id": last + len(extra_nodes), "last_link_id": len(links),
            "nodes": list(nodes.values()) + extra_nodes, "links": links, "groups": [], "config": {}, "extra": {},
            "version": 0.4}


def to_api(workflow: dict, info: NodeInfo) -> dict:
    """A UI-format workflow as the API-format prompt the frontend would queue."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        inputs = {name: value for name, value in zip(widget_slots(info(node["type"])), node["widgets_values"],
                                                     strict=True) if name}
        for entry in node["inputs"]:
            if entry["link"] is not None:
                link = links[entry["link"]]
                inputs[entry["name"]] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
