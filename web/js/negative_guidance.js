// The pack's UI: the r_t curves drawn inside Attention r_t, and a model-evaluations readout on the guidance nodes.
// Every text from the graph (prompt words) reaches the page through canvas fillText or textContent, never as HTML.
import { app } from "../../../scripts/app.js";

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

/** A one-line readout under the widgets; its text comes from the node's last run. */
function addReadout(node, placeholder) {
  const line = document.createElement("div");
  line.className = "negative-guidance-cost";
  line.style.cssText = "font:11px sans-serif;color:#9ab;padding:2px 4px;white-space:normal";
  line.textContent = placeholder;
  node.addDOMWidget("model_evaluations", "negative_guidance_cost", line, { serialize: false, hideOnZoom: false, getMinHeight: () => 30 });
  return line;
}

app.registerExtension({
  name: "negative_guidance.ui",
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
        this.costReadout = addReadout(this, "model evaluations per step: shown after a run");
      });
      chain(nodeType.prototype, "onExecuted", function (message) {
        const text = message?.text?.[0];
        if (text) this.costReadout.textContent = text;
      });
    }
  },
});
