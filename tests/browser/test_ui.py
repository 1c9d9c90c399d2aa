"""The pack in the real frontend: the extension loads, nodes carry tooltips, every example loads and turns into
the prompt the tests run, and a run of the analysis graph draws the r_t plot (screenshot in tests/artifacts)."""

import json
import time

import harness
import pytest
import workflows

EXAMPLES = sorted((harness.PACK_ROOT / "example_workflows").glob("*.json"))
OURS = ["NegativeGuidanceGuider", "NegativeGuidanceCFG", "NegativeTerm", "AttentionCapture", "AttentionRt"]
EVIL = "<img src=x onerror=window.__injected=1>"


def severe_logs(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_extension_loads_and_our_nodes_have_tooltips(browser):
    assert browser.execute_script("return app.extensions.some(e => e.name === 'negative_guidance.ui')")
    defs = browser.execute_script(
        "return Object.fromEntries(arguments[0].map(n => [n, LiteGraph.registered_node_types[n]?.nodeData]))", OURS)
    for name, data in defs.items():
        assert data, f"{name} is not registered in the frontend"
        assert data["description"]
        for group in ("required", "optional"):
            for input_name, spec in data["input"].get(group, {}).items():
                assert spec[1].get("tooltip"), (name, input_name)
    widgets = browser.execute_script(
        "return Object.fromEntries(arguments[0].map(n => [n, LiteGraph.createNode(n).widgets.map(w => w.name)]))",
        OURS)
    assert "r_t_curves" in widgets["AttentionRt"]
    assert "model_evaluations" in widgets["NegativeGuidanceGuider"]
    assert "model_evaluations" in widgets["NegativeGuidanceCFG"]


def test_the_examples_are_served_as_templates(ui_server):
    pack = "comfyui-negative-guidance"
    assert sorted(ui_server.get("/workflow_templates")[pack]) == [p.stem for p in EXAMPLES]
    for path in EXAMPLES:
        served = ui_server.get(f"/api/workflow_templates/{pack}/{path.name}")
        assert served == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_loads_into_the_prompt_the_tests_run(browser, ui_server, path):
    browser.get_log("browser")
    workflow = json.loads(path.read_text(encoding="utf-8"))
    output = browser.execute_async_script("""
        const [workflow, done] = arguments;
        app.loadGraphData(workflow).then(() => app.graphToPrompt()).then(p => done(p.output), e => done(String(e)));
    """, workflow)
    info = lambda name: ui_server.get(f"/object_info/{name}")[name]  # noqa: E731
    assert {k: {key: v[key] for key in ("class_type", "inputs")} for k, v in output.items()} == workflows.to_api(
        workflow, info)
    assert severe_logs(browser) == []


def test_running_the_analysis_graph_draws_the_plot(browser, ui_server, artifacts):
    info = lambda name: ui_server.get(f"/object_info/{name}")[name]  # noqa: E731
    path = next(p for p in EXAMPLES if "attention" in p.stem)
    prompt = workflows.to_api(json.loads(path.read_text(encoding="utf-8")), info)  # as shipped: the toy model, offline
    capture = next(n for n in prompt.values() if n["class_type"] == "AttentionCapture")["inputs"]
    encoders = [n for n in prompt.values() if n["class_type"] == "CLIPTextEncode"]
    negative = next(n for n in encoders if n["inputs"]["text"] == capture["negative_text"])
    negative["inputs"]["text"] = capture["negative_text"] = f"dot {EVIL}"
    capture.update(negative_words=f"dot, {EVIL}", special_tokens=True)
    browser.get_log("browser")
    browser.execute_async_script("""
        const [workflow, done] = arguments;
        app.loadGraphData(workflow).then(() => app.queuePrompt(0, 1)).then(() => done(), e => done(String(e)));
    """, workflows.to_ui(prompt, info))
    rt = "app.graph.nodes.find(n => n.type === 'AttentionRt')"
    deadline = time.monotonic() + 120
    while not browser.execute_script(f"return !!{rt}.rtPlot.data"):
        assert time.monotonic() < deadline, "the analysis never reached the node"
        time.sleep(0.25)
    words = browser.execute_script(f"return {rt}.rtPlot.data.words")
    assert words == ["dot", EVIL, "<bos>", "<eos>"]
    browser.execute_script(f"""
        const node = {rt};
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [140 - node.pos[0], 60 - node.pos[1]];
        app.canvas.setDirty(true, true);
    """)
    time.sleep(1.0)
    browser.execute_script(f"""
        const c = {rt}.rtPlot.canvas, r = c.getBoundingClientRect();
        c.dispatchEvent(new MouseEvent('mousemove', {{clientX: r.left + r.width / 2, clientY: r.top + 20}}));
    """)
    tip, painted, injected, cost = browser.execute_script(f"""
        const node = {rt}, c = node.rtPlot.canvas;
        const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let coloured = 0;
        for (let i = 0; i < pixels.length; i += 4) coloured += pixels[i] !== pixels[i + 2];  // not grey
        const guider = app.graph.nodes.find(n => n.type === 'NegativeGuidanceGuider');
        return [node.rtPlot.tip.textContent, coloured, window.__injected !== undefined
                || document.querySelector('.negative-guidance-rt img') !== null, guider.costReadout.textContent];
    """)
    browser.save_screenshot(str(artifacts / "r_t_plot_in_node.png"))
    assert EVIL in tip and "<eos>" in tip  # escaped: shown as text
    assert painted > 100  # the coloured curves
    assert not injected
    assert "model evaluations per step" in cost
    browser.save_screenshot(str(artifacts / "r_t_plot_in_node.png"))
    assert severe_logs(browser) == []
