// The pack's UI: the r_t curves drawn inside Attention r_t, and an evaluations readout (conditionings per model call)
// on the guidance nodes.
// Every text from the graph (prompt words) reaches the page through canvas fillText or textContent, never as HTML.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const RT_NODE = "AttentionRt";
const COST_NODES = ["NegativeGuidanceGuider", "NegativeGuidanceCFG"];
// Word colours: the i-th negative word in COLOURS[i], as in the PNGs (attention/render.py PALETTE; a unit test
// compares the two lists).
const COLOURS = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#56b4e9", "#cc79a7"];
const PAD = { left: 34, right: 8, top: 8, bottom: 18 };

/** Call `extra` after the prototype's own `name` method, keeping its result. */
function chain(proto, name, extra) {
  const original = proto[name];
  proto[name] = function (...args) {
    const result = original?.apply(this, args);
    extra.apply(this, args);
    return result;
  };
}

/** The r_t payload: {words, related, r: [[r_t | null per step] per word], gate_step, score}. */
class RtPlot {
  constructor(node) {
    this.root = document.createElement("div");
    this.root.className = "negative-guidance-rt";
    this.root.style.cssText = "position:relative;width:100%;height:100%;min-height:160px";
    this.canvas = document.createElement("canvas");
    this.canvas.style.cssText = "width:100%;height:100%;display:block";
    this.tip = document.createElement("div");
    this.tip.style.cssText = "position:absolute;display:none;pointer-events:none;background:#222d;color:#eee;" +
      "font:11px sans-serif;padding:3px 5px;border-radius:3px;white-space:pre";
    this.root.append(this.canvas, this.tip);
    this.data = null;
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.style.display = "none"));
    new ResizeObserver(() => this.draw()).observe(this.root);
    node.addDOMWidget("r_t_curves", "negative_guidance_rt", this.root, { serialize: false, hideOnZoom: false, getMinHeight: () => 160 });
  }

  set(data) {
    this.data = data;
    this.draw();
  }

  frame() {
    const [width, height] = [this.canvas.clientWidth, this.canvas.clientHeight]; // layout size, before canvas zoom
    const steps = this.data.r[0]?.length ?? 0;
    const values = this.data.r.flat().filter((v) => v !== null);
    const top = Math.max(1e-6, ...values) * 1.05;
    const x = (t) => PAD.left + (t / Math.max(1, steps - 1)) * (width - PAD.left - PAD.right);
    const y = (v) => height - PAD.bottom - (v / top) * (height - PAD.top - PAD.bottom);
    return { width, height, steps, top, x, y };
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    const [width, height] = [this.canvas.clientWidth, this.canvas.clientHeight];
    const scale = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(width * scale));
    this.canvas.height = Math.max(1, Math.round(height * scale));
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    ctx.fillStyle = "#1b1b1b";
    ctx.fillRect(0, 0, width, height);
    ctx.font = "10px sans-serif";
    ctx.fillStyle = "#aaa";
    if (!this.data) {
      ctx.fillText("r_t curves appear here after a run", PAD.left, height / 2);
      return;
    }
    const f = this.frame();
    ctx.strokeStyle = "#555";
    ctx.strokeRect(PAD.left, PAD.top, width - PAD.left - PAD.right, height - PAD.top - PAD.bottom);
    ctx.fillText(f.top.toFixed(2), 2, PAD.top + 8);
    ctx.fillText("0", 2, height - PAD.bottom);
    ctx.fillText(`step 0 … ${f.steps - 1}`, PAD.left, height - 4);
    const gate = f.x(this.data.gate_step);
    ctx.setLineDash([4, 3]);
    ctx.strokeStyle = "#bbb";
    ctx.beginPath();
    ctx.moveTo(gate, PAD.top);
    ctx.lineTo(gate, height - PAD.bottom);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillText(`gate ${this.data.gate_step}`, gate + 3, height - PAD.bottom - 3);
    this.data.r.forEach((curve, i) => {
      ctx.strokeStyle = COLOURS[i % COLOURS.length];
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let pen = false;
      curve.forEach((v, t) => {
        if (v === null) return void (pen = false);
        pen ? ctx.lineTo(f.x(t), f.y(v)) : ctx.moveTo(f.x(t), f.y(v));
        pen = true;
      });
      ctx.stroke();
      ctx.fillStyle = COLOURS[i % COLOURS.length];
      ctx.fillText(`${this.data.words[i]} → ${this.data.related[i]}`, width - 110, PAD.top + 12 * (i + 1));
    });
  }

  hover(event) {
    if (!this.data) return;
    const f = this.frame();
    const rect = this.canvas.getBoundingClientRect(); // on screen: scaled by the canvas zoom
    const x = ((event.clientX - rect.left) * f.width) / rect.width;
    const fraction = (x - PAD.left) / (f.width - PAD.left - PAD.right);
    const t = Math.min(f.steps - 1, Math.max(0, Math.round(fraction * (f.steps - 1))));
    const lines = this.data.words.map((w, i) => `${w}: ${this.data.r[i][t]?.toFixed(3) ?? "off"}`);
    this.tip.textContent = [`step ${t}`, ...lines].join("\n");
    this.tip.style.left = `${Math.min(x + 10, f.width - 90)}px`;
    this.tip.style.top = "4px";
    this.tip.style.display = "block";
  }
}

// The evaluations readout: conditionings per model call, from the widgets and the NegativeTerm chain, by the rule of
// nodes/guidance_nodes.py cost_text and guidance/plan.py evaluation_range (a browser test compares the two). It is
// computed in the browser because a cached node sends no message when a graph is rerun from a fresh page; a run's
// own text replaces it until a setting changes.
const ZERO_TOL = 1e-9; // guidance/plan.py ZERO_TOL
const KSAMPLER_PROBES = [2.0, 3.0]; // cost_text: c_u = 0 at one cfg only, so two probes give the range
const STANDARD = "standard";
const COST_TAIL = " in one batch (stock CFG: 2; DualCFGGuider, PerpNegGuider: 3); samplers such as heun make 2 model calls per step";
const UNCHECKED = "; empty is unchecked: connect clip to let the node encode and check it";
// A linked window edge (e.g. Attention r_t's gate_start): at the edge of its range, or inside it.
const LINKED_CASES = { neg_start: [0.0, 0.5], start: [0.0, 0.5], neg_end: [1.0, 0.5], end: [1.0, 0.5] };
const NOT_A_RUN = "conditionings per model call: shown after a run";

/** Σ of the values with Neumaier's compensation (Python's math.fsum, for the few terms here). */
function fsum(values) {
  let sum = 0, c = 0;
  for (const v of values) {
    const t = sum + v;
    c += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
    sum = t;
  }
  return sum + c;
}

/** c_u = 1 − Σ w, snapped to 0 when it is float noise (plan.py empty_coefficient). */
function emptyCoefficient(weights) {
  const cu = 1 - fsum(weights);
  return Math.abs(cu) <= ZERO_TOL * Math.max(1, ...weights.map(Math.abs)) ? 0 : cu;
}

/** Terms {scale, full, schedule} of eq. 8 at cfg (patch.py NegativeGuidance.terms). */
function guidanceTerms(s, cfg) {
  const negScale = s.mode === STANDARD ? cfg - 1 : s.neg_scale;
  const window = (start, end) => start === 0 && end === 1;
  return [
    { scale: cfg, full: true, schedule: "constant" },
    { scale: -negScale, full: window(s.neg_start, s.neg_end), schedule: s.neg_schedule },
    ...s.terms.filter((t) => !t.attention)
      .map((t) => ({ scale: -t.weight, full: window(t.start, t.end), schedule: t.schedule })),
  ];
}

/** [fewest, most] attention-space negatives one model call computes (plan.py attention_range). */
function attentionRange(terms) {
  const live = terms.filter((t) => t.attention && t.weight !== 0);
  return [live.filter((t) => t.start === 0 && t.end === 1).length, live.length];
}

/** [fewest, most] conditionings one model call can need (plan.py evaluation_range). */
function evaluationRange(terms) {
  const live = terms.filter((t) => t.scale !== 0);
  const always = live.filter((t) => t.full);
  const fewest = always.length + (emptyCoefficient(always.map((t) => t.scale)) !== 0 ? 1 : 0);
  const ramp = live.some((t) => t.schedule !== "constant");
  const most = live.length + (ramp || emptyCoefficient(live.map((t) => t.scale)) !== 0 ? 1 : 0);
  return [fewest, most];
}

/** Whether some call can need u (plan.py needs_empty). */
function needsEmpty(terms) {
  const live = terms.filter((t) => t.scale !== 0);
  const always = live.filter((t) => t.full);
  return live.some((t) => t.schedule !== "constant") || always.length < live.length
    || emptyCoefficient(always.map((t) => t.scale)) !== 0;
}

/** The readout for one set of settings: {cfg (null: the KSampler's), mode, neg_scale, neg_start, neg_end,
 * neg_schedule, terms: [{weight, start, end, schedule, attention}], clip, empty (whether each is connected)}. */
export function evaluationsText(s) {
  const windows = [["neg_start", "neg_end", s.neg_start, s.neg_end],
    ...s.terms.map((t, i) => [`term ${i + 1} start`, "end", t.start, t.end])];
  for (const [startName, endName, start, end] of windows) {
    if (start > end) return `the run will stop: ${startName} ${start} is after ${endName} ${end}`;
  }
  const probes = s.cfg === null ? KSAMPLER_PROBES : [s.cfg];
  const needed = s.cfg === null ? s.mode !== STANDARD || needsEmpty(guidanceTerms(s, 2.0))
    : needsEmpty(guidanceTerms(s, s.cfg));
  if (needed && !s.empty && !s.clip) {
    return "the run will stop: these settings evaluate u, the empty prompt: connect clip (the node encodes it)";
  }
  const ranges = probes.map((cfg) => evaluationRange(guidanceTerms(s, cfg)));
  const low = Math.min(...ranges.map((r) => r[0])), high = Math.max(...ranges.map((r) => r[1]));
  const count = low === high ? `${low}` : `${low}–${high}`;
  let where = s.cfg === null ? " at the KSampler's cfg" : "";
  if (s.cfg === null && s.mode === STANDARD) { // at cfg 1 the main negative is off
    const [one, most] = evaluationRange(guidanceTerms(s, 1.0));
    where += ` (${one}${one === most ? "" : `–${most}`} at cfg 1)`;
  }
  const [fewest, all] = attentionRange(s.terms);
  const attention = all === 0 ? "" : `. Attention-space negatives: ${fewest === all ? all : `${fewest}–${all}`} `
    + "per model call, computed inside its attention layers: no extra model evaluation (at cfg 1 with the main "
    + "negative off, 1 model evaluation per step)";
  return `${count} conditionings per model call${where},${COST_TAIL}${attention}`
    + `${!s.clip && s.empty ? UNCHECKED : ""}`;
}

/** Whether input `name` of a node (a widget turned into a socket, or a socket) is connected. */
function linked(node, name) {
  return node.inputs?.some((i) => (i.name === name || i.widget?.name === name) && i.link != null) ?? false;
}

/** The node wired into input `name`, through Reroute nodes; null if none. */
function source(node, name) {
  let slot = node.inputs?.findIndex((i) => i.name === name) ?? -1;
  let from = slot < 0 ? null : node.getInputNode(slot);
  while (from?.type === "Reroute") from = from.getInputNode(0);
  return from;
}

/** Widget values, with the linked ones as lists of cases; a linked value the count depends on that has no cases
 * makes the result a string (why there is no readout). */
function read(node, names) {
  const out = {};
  for (const [name, key] of names) {
    const widget = node.widgets?.find((w) => w.name === name);
    if (linked(node, name)) {
      if (!LINKED_CASES[key]) return `${name} comes from a link`;
      out[key] = LINKED_CASES[key];
    } else {
      out[key] = [widget?.value];
    }
  }
  return out;
}

/** The terms chain wired into `node`'s terms: a list of {weight, start, end, schedule, attention} case lists
 * (an AttentionNegativeTerm's weight is its scale φ). */
function termChain(node) {
  const chain = [];
  for (let from = source(node, "terms"), seen = new Set(); from; from = source(from, "terms")) {
    const attention = from.type === "AttentionNegativeTerm";
    if (from.type !== "NegativeTerm" && !attention) return `terms come from ${from.type}`;
    if (seen.has(from.id)) return "the terms chain loops";
    seen.add(from.id);
    const term = read(from, [[attention ? "scale" : "weight", "weight"], ["start", "start"], ["end", "end"],
      ["schedule", "schedule"]]);
    if (typeof term === "string") return `a ${from.type}'s ${term}`;
    chain.unshift({ ...term, attention: [attention] });
  }
  return chain;
}

/** Every combination of the case lists of an object {key: [cases]}. */
function combinations(cases) {
  return Object.entries(cases).reduce((all, [key, values]) =>
    all.flatMap((partial) => values.map((v) => ({ ...partial, [key]: v }))), [{}]);
}

/** The readout of a guidance node from its widgets and connections. */
function nodeReadout(node) {
  const names = [["mode", "mode"], ["neg_scale", "neg_scale"], ["neg_start", "neg_start"], ["neg_end", "neg_end"],
    ["neg_schedule", "neg_schedule"]];
  const own = read(node, node.type === "NegativeGuidanceGuider" ? [["cfg", "cfg"], ...names] : names);
  const chain = termChain(node);
  if (typeof own === "string" || typeof chain === "string") return `${NOT_A_RUN} (${typeof own === "string" ? own : chain})`;
  const terms = chain.map(combinations);
  const texts = new Set();
  for (const settings of combinations(own)) {
    for (const picked of combinations(Object.fromEntries(terms.map((t, i) => [i, t])))) {
      texts.add(evaluationsText({ cfg: null, ...settings, terms: Object.values(picked),
        clip: linked(node, "clip"), empty: linked(node, "empty") }));
    }
  }
  if (texts.size === 1) return [...texts][0];
  const counts = [...texts].map((t) => t.match(/^(\d+)(?:–(\d+))? conditionings/)).filter(Boolean);
  if (counts.length < texts.size) return `${NOT_A_RUN} (it depends on a linked window)`;
  const low = Math.min(...counts.map((m) => +m[1])), high = Math.max(...counts.map((m) => +(m[2] ?? m[1])));
  return [...texts][0].replace(/^\d+(–\d+)? /, `${low === high ? low : `${low}–${high}`} `);
}

/** A one-line readout under the widgets: computed from the node's settings, or the text of its last run while
 * those settings stand. */
function addReadout(node) {
  const line = document.createElement("div");
  line.className = "negative-guidance-cost";
  line.style.cssText = "font:11px sans-serif;color:#9ab;padding:2px 4px;white-space:normal";
  line.textContent = NOT_A_RUN;
  node.addDOMWidget("model_evaluations", "negative_guidance_cost", line, { serialize: false, hideOnZoom: false, getMinHeight: () => 30 });
  let shown = null; // {key, text}: what the line shows and the settings it was made for
  node.refreshCostReadout = (runText) => {
    const key = JSON.stringify([node.widgets?.map((w) => w.value), node.inputs?.map((i) => i.link != null),
      termChainKey(node)]);
    if (runText) shown = { key, text: runText };
    else if (shown?.key !== key) shown = { key, text: nodeReadout(node) };
    if (line.textContent !== shown.text) line.textContent = shown.text;
  };
  return line;
}

/** What the terms chain's readout depends on, for the readout's cache key. */
function termChainKey(node) {
  const key = [];
  for (let from = source(node, "terms"), n = 0; from && n < 64; from = source(from, "terms"), n++) {
    key.push(from.type, from.widgets?.map((w) => w.value), from.inputs?.map((i) => i.link != null));
  }
  return key;
}

function refreshAll() {
  for (const node of app.graph?.nodes ?? []) node.refreshCostReadout?.();
}

app.registerExtension({
  name: "negative_guidance.ui",
  setup() {
    for (const event of ["execution_start", "execution_cached", "execution_success"]) {
      api.addEventListener(event, refreshAll);
    }
  },
  afterConfigureGraph() {
    refreshAll();
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === RT_NODE) {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.rtPlot = new RtPlot(this);
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        const data = message?.negative_guidance_rt?.[0];
        if (data) this.rtPlot.set(data);
      });
    }
    if (COST_NODES.includes(nodeData.name)) {
      chain(nodeType.prototype, "onNodeCreated", function () {
        this.costReadout = addReadout(this);
        this.refreshCostReadout();
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        const text = message?.text?.[0];
        if (text) this.refreshCostReadout(text);
      });
      for (const hook of ["onConfigure", "onConnectionsChange", "onWidgetChanged", "onDrawForeground"]) {
        chain(nodeType.prototype, hook, function () {
          this.refreshCostReadout?.();
        });
      }
    }
  },
});
