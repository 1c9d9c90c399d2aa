"""The pack in the real frontend: the extension loads; every input and output carries a tooltip; help pages and
template thumbnails load without a 404; every example loads (with its note) and turns into the prompt the tests run;
the evaluations readout is computed in the browser by the node's own rule, before a run and after a cached one; a
run of the analysis graph draws the r_t plot with its words as text (screenshot in tests/artifacts); and no SEVERE
console entry comes from the pack."""

import json
import time

import harness
import pytest
import workflows
from comfy_helpers import PACK_NODES
from graphs import Graph, custom_sample, ksampler

EXAMPLES = sorted((harness.PACK_ROOT / "example_workflows").glob("*.json"))
PACK = "comfyui-negative-guidance"  # the folder the live server loads the pack from (tests/support/live_server.py)
OURS = PACK_NODES  # every node of the pack
SPECIAL = ["<bos>", "<eos>", "<pad>"]  # HTML-looking words: they must reach the page as text
SEVERE: list[str] = []  # every SEVERE entry the tests drained from the console, for the last test
PINIA = "document.getElementById('vue-app').__vue_app__.config.globalProperties.$pinia._s"


def offline(message: str) -> bool:
    """A fetch from a host other than the local server that the closed network refused (v0.33's frontend asks the
    model hub about the default workflow's files)."""
    return "net::ERR_" in message and not message.startswith("http://127.0.0.1")


def severe_logs(driver) -> list[str]:
    """The SEVERE console entries since the last call, but the closed network's refusals (also kept for the pack-wide
    check)."""
    entries = [entry["message"] for entry in driver.get_log("browser")
               if entry["level"] == "SEVERE" and not offline(entry["message"])]
    SEVERE.extend(entries)
    return entries


def from_the_pack(message: str) -> bool:
    return any(mark in message for mark in (PACK, "negative_guidance", *OURS))


def object_info(ui_server):
    return lambda name: ui_server.get(f"/object_info/{name}")[name]


def skip_where_a_node_is_missing(ui_server, workflow: dict, name: str) -> None:
    """An example whose nodes this ComfyUI lacks (Flux.2's on v0.3.64) is skipped, naming them."""
    missing = {n["type"] for n in workflow["nodes"] if n["type"] not in workflows.FRONTEND_ONLY} - set(
        ui_server.get("/object_info"))
    if missing:
        pytest.skip(f"{name}: this ComfyUI has no {', '.join(sorted(missing))}")


def load(browser, workflow: dict):
    """Load a UI workflow into the page; returns the prompt the frontend would queue."""
    return browser.execute_async_script("""
        const [workflow, done] = arguments;
        app.loadGraphData(workflow).then(() => app.graphToPrompt()).then(p => done(p.output), e => done(String(e)));
    """, workflow)


def queue_and_wait(browser, timeout: float = 180) -> None:
    """Queue the loaded graph from the page, as the Run button does, and wait until the page hears it finished."""
    browser.execute_script("""
        window.__finished = null;
        for (const event of ['execution_success', 'execution_error', 'execution_interrupted'])
          app.api.addEventListener(event, () => { window.__finished ??= event; });
    """)
    browser.execute_async_script("const done = arguments[0]; app.queuePrompt(0, 1).then(() => done());")
    deadline = time.monotonic() + timeout
    while (finished := browser.execute_script("return window.__finished")) is None:
        assert time.monotonic() < deadline, "the run never finished"
        time.sleep(0.2)
    assert finished == "execution_success"


def test_the_extension_loads_and_every_input_and_output_has_a_tooltip(browser):
    severe_logs(browser)
    assert browser.execute_script("return app.extensions.some(e => e.name === 'negative_guidance.ui')")
    defs = browser.execute_script(
        "return Object.fromEntries(arguments[0].map(n => [n, LiteGraph.registered_node_types[n]?.nodeData]))", OURS)
    for name, data in defs.items():
        assert data, f"{name} is not registered in the frontend"
        assert data["description"]
        for group in ("required", "optional"):
            for input_name, spec in data["input"].get(group, {}).items():
                assert spec[1].get("tooltip"), (name, input_name)
        assert len(data["output_tooltips"]) == len(data["output"]) and all(data["output_tooltips"]), name
    widgets = browser.execute_script(
        "return Object.fromEntries(arguments[0].map(n => [n, LiteGraph.createNode(n).widgets?.map(w => w.name)]))",
        OURS)
    assert "r_t_curves" in widgets["AttentionRt"]
    assert "model_evaluations" in widgets["NegativeGuidanceGuider"]
    assert "model_evaluations" in widgets["NegativeGuidanceCFG"]
    assert severe_logs(browser) == []


HELP = PINIA + """, sleep = ms => new Promise(r => setTimeout(r, ms));
    const shown = async (container) => {  // [the help page's HTML, the fallback's text], once one of them shows
      const find = (name) => document.querySelector(`${container} .${name}`);
      for (let t = 0; !find('markdown-content') && !find('fallback-content') && t < 200; t++) await sleep(50);
      return [find('markdown-content')?.innerHTML ?? null, find('fallback-content')?.textContent ?? null];
    };
    const page = async (def) => {  // the help page a user opens for a node of type def.name
      if (stores.has('rightSidePanel')) {  // 1.48 on: the Info tab of the side panel, for the selected node
        if (!LiteGraph.registered_node_types[def.name]) stores.get('nodeDef').addNodeDef(def);
        app.graph.clear();
        const known = LiteGraph.registered_node_types[def.name];  // else a bare node of the type just defined
        const node = known ? LiteGraph.createNode(def.name) : Object.assign(new LGraphNode(def.name), {type: def.name});
        app.graph.add(node);
        app.canvas.selectItems([node]);
        stores.get('canvas').updateSelectedItems();
        stores.get('rightSidePanel').openPanel('info');  // as the selection toolbox's info button does
        await sleep(100);  // the panel shows the new node
        return await shown('.node-help-content');
      }
      const help = stores.get('nodeHelp');  // 1.27: the help page of the node library's sidebar
      await app.extensionManager.command.execute('Workspace.ToggleSidebarTab.node-library');
      help.openHelp(def);
      const out = await shown('body');
      help.closeHelp();
      await app.extensionManager.command.execute('Workspace.ToggleSidebarTab.node-library');
      return out;
    };
    const close = async () => {  // the side panel as it was, once its tabs have settled
      await sleep(300);
      stores.get('rightSidePanel')?.closePanel();
      app.graph.clear();
    };"""
DEFS = "LiteGraph.registered_node_types"


def test_help_pages_open_in_the_frontend_without_a_404(browser):
    severe_logs(browser)
    pages = browser.execute_async_script(f"""
        const [names, done] = arguments;
        const stores = {HELP}
        (async () => {{
          const out = {{}};
          for (const name of names) out[name] = await page({DEFS}[name].nodeData);
          await close();
          done(out);
        }})();
    """, OURS)
    titles = browser.execute_script(f"return Object.fromEntries(arguments[0].map("
                                    f"n => [n, {DEFS}[n].nodeData.display_name]))", OURS)
    for name, (html, fallback) in pages.items():
        assert fallback is None, (name, fallback)
        assert html.startswith(f"<h1>{titles[name]}</h1>") and "<h2>Outputs</h2>" in html, name
    assert severe_logs(browser) == []


def test_a_missing_help_page_would_be_seen(browser):
    """The check above can fail: a node of the pack without a page logs a 404 and shows the fallback."""
    severe_logs(browser)
    html, fallback = browser.execute_async_script(f"""
        const done = arguments[0];
        const stores = {HELP}
        page({{...{DEFS}['NegativeTerm'].nodeData, name: 'NoSuchNode'}}).then(async shown => {{
          await close();
          done(shown);
        }});
    """)
    missing = [m for m in browser.get_log("browser") if m["level"] == "SEVERE"]  # not kept: made on purpose
    assert fallback and html is None
    assert any("docs/NoSuchNode/en.md" in m["message"] and "404" in m["message"] for m in missing)


def test_the_examples_are_served_as_templates_with_their_thumbnails(ui_server):
    import requests

    assert sorted(ui_server.get("/workflow_templates")[PACK]) == [p.stem for p in EXAMPLES]
    for path in EXAMPLES:
        served = ui_server.get(f"/api/workflow_templates/{PACK}/{path.name}")
        assert served == json.loads(path.read_text(encoding="utf-8"))
        reply = requests.get(f"{ui_server.url}/api/workflow_templates/{PACK}/{path.stem}.jpg", timeout=30)
        assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/jpeg", path.stem
        assert reply.content == path.with_suffix(".jpg").read_bytes()


def test_the_template_browser_shows_every_thumbnail(browser, artifacts):
    severe_logs(browser)
    cards = browser.execute_async_script(f"""
        const done = arguments[0];
        (async () => {{
          await app.extensionManager.command.execute('Comfy.BrowseTemplates');
          const wait = async (ok) => {{
            for (let t = 0; !ok() && t < 600; t++) await new Promise(r => setTimeout(r, 50));  // 30 s: a busy CPU
          }};
          const entries = () => [...document.querySelectorAll('li, [role=button]')];  // 1.27's list, 1.48's nav
          const item = () => entries().find(e => e.textContent.trim() === '{PACK}');
          await wait(item);
          item().click();
          const cards = () => [...document.querySelectorAll('[data-testid^=template-workflow-]')];
          const name = (card) => card.dataset.testid.replace('template-workflow-', '');
          await wait(() => cards().length > 0);
          const out = {{}};
          for (let fresh; (fresh = cards().find(c => !(name(c) in out)));) {{  // a grid may recycle its cards
            const key = name(fresh);
            fresh.scrollIntoView();  // the thumbnails load lazily, once in view
            const img = () => cards().find(c => name(c) === key)?.querySelector('img');
            await wait(() => img()?.complete && img().naturalWidth > 0);
            out[key] = [img()?.naturalWidth, img()?.naturalHeight];
          }}
          done(out);
        }})();
    """)
    browser.save_screenshot(str(artifacts / "templates.png"))
    browser.execute_script(f"""
        const dialogs = {PINIA}.get('dialog');
        for (let i = 0; dialogs.dialogStack.length && i < 5; i++)
          dialogs.closeDialog({{key: dialogs.dialogStack.at(-1).key}});
    """)
    assert cards == {path.stem: [384, 384] for path in EXAMPLES}
    assert severe_logs(browser) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_loads_with_its_note_into_the_prompt_the_tests_run(browser, ui_server, path):
    severe_logs(browser)
    workflow = json.loads(path.read_text(encoding="utf-8"))
    skip_where_a_node_is_missing(ui_server, workflow, path.stem)
    output = load(browser, workflow)
    assert {k: {key: v[key] for key in ("class_type", "inputs")} for k, v in output.items()} == workflows.to_api(
        workflow, object_info(ui_server))
    note = next(n for n in workflow["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]
    shown = browser.execute_script("return app.graph.nodes.filter(n => n.type === 'MarkdownNote')"
                                   ".map(n => n.widgets[0].value)")
    assert shown == [note]
    assert severe_logs(browser) == []


# The readout graph: guidance nodes with settings that give every kind of readout (their ids are the keys).
PATCHES = {
    "independent": dict(),
    "standard": dict(mode="standard"),
    "standard_delayed": dict(mode="standard", neg_start=0.3),
    "independent_ramp": dict(neg_start=0.2, neg_schedule="linear"),
    "no_negative": dict(neg_scale=0.0),
    "terms": dict(terms=[dict(weight=3.0, start=0.2, window_unit="percent", schedule="cosine"), dict(weight=0.0)]),
    "empty_without_clip": dict(mode="standard", clip=None, empty=True),
    "pulling_term": dict(mode="standard", terms=[dict(weight=-2.0)]),
    "attention_terms": dict(mode="standard", terms=[dict(scale=4.0), dict(weight=2.0, start=0.5),
                                                    dict(scale=2.0, start=0.2)]),
}
GUIDERS = {
    "eq9_equivalent": dict(cfg=7.0, neg_scale=6.0),
    "cfg_1": dict(cfg=1.0, neg_scale=2.0),
    "standard_cosine": dict(cfg=7.0, mode="standard", neg_end=0.5, window_unit="percent", neg_schedule="cosine"),
    "standard_cfg_1": dict(cfg=1.0, mode="standard"),
    "two_terms": dict(cfg=4.5, neg_scale=3.5, terms=[dict(weight=1.0, start=0.5), dict(weight=2.0, end=0.7,
                                                                                         schedule="linear")]),
    "empty_and_clip": dict(cfg=7.0, neg_scale=4.0, empty=True),
}
MAIN = dict(mode="independent", neg_scale=6.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
            neg_schedule="constant")
TERM = dict(weight=3.0, start=0.0, end=1.0, window_unit="steps", schedule="constant")
ATTENTION_TERM = dict(tau=2.5, alpha=0.25, start=0.0, end=1.0, window_unit="steps", schedule="constant")


def readout_graph() -> tuple[dict, dict[str, str]]:
    """Every setting above on the tiny SD1 model, each into its own 2-step sampler: (prompt, {node id: name})."""
    g = Graph()
    loader = g.node("NegativeGuidanceTestTinySD1", seed=0)
    clip = g.out(loader, 1)
    p, n, u = (g.node("CLIPTextEncode", text=text, clip=clip) for text in ("a photo of a cat", "blurry", ""))
    latent = g.node("EmptyLatentImage", width=64, height=64, batch_size=1)
    names = {}
    for kind, variants in (("NegativeGuidanceCFG", PATCHES), ("NegativeGuidanceGuider", GUIDERS)):
        for name, settings in variants.items():
            settings = dict(settings)
            terms = None
            for term in settings.pop("terms", []):  # a term with a scale is an AttentionNegativeTerm
                kind_of_term, base = ("AttentionNegativeTerm", ATTENTION_TERM) if "scale" in term else ("NegativeTerm",
                                                                                                       TERM)
                inputs = base | term | ({"terms": terms} if terms else {})
                terms = g.node(kind_of_term, conditioning=g.node("CLIPTextEncode", text="dog", clip=clip), **inputs)
            wiring = {"clip": settings.pop("clip", clip), "empty": u if settings.pop("empty", False) else None,
                      "terms": terms}
            inputs = MAIN | settings | {k: v for k, v in wiring.items() if v is not None}
            if kind == "NegativeGuidanceCFG":
                node = g.node(kind, model=loader, **inputs)
                samples = ksampler(g, node, p, n, latent, steps=2)
            else:
                node = g.node(kind, model=loader, positive=p, negative=n, **inputs)
                samples = custom_sample(g, loader, node, latent, steps=2)
            names[node[0]] = name
            g.node("SaveLatent", samples=samples, filename_prefix=f"readout/{name}")
    return g.prompt, names


def readouts(browser) -> dict[str, str]:
    return browser.execute_script("""
        return Object.fromEntries(app.graph.nodes.filter(n => n.costReadout)
                                  .map(n => [String(n.id), n.costReadout.textContent]));
    """)


def test_the_readout_is_the_nodes_own_text_before_a_run_and_after_a_cached_one(browser, ui_server):
    """The browser computes the readout from the widgets and the terms chain (NegativeTerm and
    AttentionNegativeTerm); it must equal the text
    nodes/guidance_nodes.py cost_text gives for the same settings (the run's ui message), for every setting here,
    before any run in this page and after a rerun from this page where every node is cached."""
    prompt, names = readout_graph()
    info = object_info(ui_server)
    prompt = workflows.to_api(workflows.to_ui(prompt, info), info)  # every widget as the page will send it
    history = ui_server.run(prompt)  # over HTTP: this page receives none of its messages
    assert history["status"]["status_str"] == "success", history["status"]
    assert [name for node_id, name in names.items() if node_id not in history["outputs"]] == []  # all valid, all ran
    python = {node_id: history["outputs"][node_id]["text"][0] for node_id in names}
    assert len(set(python.values())) >= 6  # the settings give different readouts
    assert "empty is unchecked" in python[next(i for i, n in names.items() if n == "empty_without_clip")]
    severe_logs(browser)
    workflow = workflows.to_ui(prompt, info)
    load(browser, workflow)
    assert readouts(browser) == python  # computed in the browser: no run has reached this page

    browser.execute_script("window.__executed = []; app.api.addEventListener('executed', "
                           "e => window.__executed.push(e.detail.node));")
    queue_and_wait(browser)
    executed = browser.execute_script("return window.__executed")
    assert not set(executed) & set(names)  # cached: the guidance nodes sent nothing
    assert readouts(browser) == python

    ids = {name: node_id for node_id, name in names.items()}
    browser.execute_script("""
        const [changes] = arguments;  // as the canvas does when a user edits a widget
        for (const [id, name, value] of changes) {
          const node = app.graph.getNodeById(Number(id)), widget = node.widgets.find(w => w.name === name);
          const old = widget.value;
          widget.value = value;
          node.onWidgetChanged?.(name, value, old, widget);
        }
    """, [[ids["independent"], "mode", "standard"], [ids["eq9_equivalent"], "cfg", 1.0],
          [ids["eq9_equivalent"], "neg_scale", 2.0]])
    now = readouts(browser)
    assert now[ids["independent"]] == python[ids["standard"]]
    assert now[ids["eq9_equivalent"]] == python[ids["cfg_1"]]
    assert severe_logs(browser) == []


def test_running_the_analysis_graph_draws_the_plot(browser, ui_server, artifacts):
    info = object_info(ui_server)
    path = next(p for p in EXAMPLES if p.stem.startswith("4_attention"))
    workflow = json.loads(path.read_text(encoding="utf-8"))
    prompt = workflows.to_api(workflow, info)  # as shipped: the toy model, offline
    capture = next(n for n in prompt.values() if n["class_type"] == "AttentionCapture")["inputs"]
    capture["special_tokens"] = True  # "<bos>", "<eos>", "<pad>": words that look like HTML elements
    browser.get_log("browser")
    workflow = workflows.to_ui(prompt, info)
    load(browser, workflow)
    guider = "app.graph.nodes.find(n => n.type === 'NegativeGuidanceGuider')"
    computed = browser.execute_script(f"return {guider}.costReadout.textContent")  # neg_start comes from a link
    queue_and_wait(browser)
    rt = "app.graph.nodes.find(n => n.type === 'AttentionRt')"
    assert browser.execute_script(f"return !!{rt}.rtPlot.data"), "the analysis never reached the node"
    words = browser.execute_script(f"return {rt}.rtPlot.data.words")
    assert words == ["hat", *SPECIAL]
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
    tip, tip_elements, painted, injected, cost = browser.execute_script(f"""
        const node = {rt}, c = node.rtPlot.canvas;
        const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let coloured = 0;
        for (let i = 0; i < pixels.length; i += 4) coloured += pixels[i] !== pixels[i + 2];  // not grey
        return [node.rtPlot.tip.textContent, node.rtPlot.tip.children.length, coloured,
                document.querySelector('bos, eos, pad') !== null, {guider}.costReadout.textContent];
    """)
    browser.save_screenshot(str(artifacts / "r_t_plot_in_node.png"))
    for word in SPECIAL:
        assert f"{word}: " in tip  # shown literally, as text
    assert tip_elements == 0 and not injected  # and never parsed as HTML
    assert painted > 100  # the coloured curves
    entry = max(ui_server.get("/history").values(), key=lambda e: e["prompt"][0])
    guider_id = next(k for k, v in prompt.items() if v["class_type"] == "NegativeGuidanceGuider")
    assert cost == computed == entry["outputs"][guider_id]["text"][0]
    assert severe_logs(browser) == []


def test_no_severe_console_entry_came_from_the_pack(browser):
    severe_logs(browser)
    assert [m for m in SEVERE if from_the_pack(m)] == []
