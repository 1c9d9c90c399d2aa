"""Write example_workflows/*.json (UI format) from the API-format graphs below: python tests/support/examples.py.

Every example loads the toy concept model the pack ships (ToyConceptModelLoader), so it runs offline as it is; with
a real checkpoint, put a Load Checkpoint in its place, a 512×512 latent and prompts of your own.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import locate
from graphs import Graph, custom_sample, ksampler

POSITIVE, NEGATIVE = "a red circle with eyes", "hat"
STANDARD = dict(mode="standard", neg_scale=6.0, neg_end=1.0, window_unit="steps", neg_schedule="constant")


def base(texts: dict[str, str], size: int = 256):
    """Loader, one CLIPTextEncode per text, an empty latent (the toy model samples at 1/8 of its size):
    (graph, model, vae, conds, latent)."""
    g = Graph()
    loader = g.node("ToyConceptModelLoader")
    conds = {name: g.node("CLIPTextEncode", text=text, clip=g.out(loader, 1)) for name, text in texts.items()}
    latent = g.node("EmptyLatentImage", width=size, height=size, batch_size=1)
    return g, loader, g.out(loader, 2), conds, latent


def save(g: Graph, samples, vae, prefix: str):
    return g.node("SaveImage", images=g.node("VAEDecode", samples=samples, vae=vae), filename_prefix=prefix)


def standard_negative() -> dict:
    """Eq. 9 through NegativeGuidanceCFG and the stock KSampler: the negative replaces u."""
    g, model, vae, c, latent = base({"p": POSITIVE, "n": NEGATIVE})
    patched = g.node("NegativeGuidanceCFG", model=model, neg_start=0.0, **STANDARD)
    save(g, ksampler(g, patched, c["p"], c["n"], latent, steps=20, seed=1), vae, "negative_guidance/standard")
    return g.prompt


def independent_scales() -> dict:
    """Eq. 8: x̂ = u + cfg·(p − u) − neg_scale·(n − u), NegativeGuidanceGuider into SamplerCustomAdvanced."""
    g, model, vae, c, latent = base({"p": POSITIVE, "n": NEGATIVE, "u": ""})
    guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0, empty=c["u"],
                    mode="independent", neg_scale=4.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                    neg_schedule="constant")
    save(g, custom_sample(g, model, guider, latent, steps=20, seed=1), vae, "negative_guidance/eq8")
    return g.prompt


def delayed_negative() -> dict:
    """Ban et al.'s setup: 50 steps, the same negative from step 0 and from step 5 (neg_start 0.1), side by side."""
    g, model, vae, c, latent = base({"p": POSITIVE, "n": NEGATIVE, "u": ""})
    for start, name in ((0.0, "undelayed"), (0.1, "from_step_5")):  # before step 5, p is guided against u
        patched = g.node("NegativeGuidanceCFG", model=model, empty=c["u"], neg_start=start, **STANDARD)
        save(g, ksampler(g, patched, c["p"], c["n"], latent, steps=50, seed=1), vae, f"negative_guidance/{name}")
    return g.prompt


def attention_analysis() -> dict:
    """r_t curves and heatmaps of a first run; its suggested gate start drives the guider of a second run."""
    g, model, vae, c, latent = base({"p": POSITIVE, "n": NEGATIVE, "u": ""})
    captured = g.node("AttentionCapture", model=model, clip=g.out(model, 1), positive_text=POSITIVE,
                      negative_text=NEGATIVE, positive_words="", negative_words="", special_tokens=False,
                      max_mb=50.0, over_cap="downsample")
    first = ksampler(g, captured, c["p"], c["n"], latent, steps=30, seed=1)
    image = g.node("VAEDecode", samples=first, vae=vae)
    rt = g.node("AttentionRt", capture=g.out(captured, 1), samples=first, score="frobenius", gate_fraction=0.5,
                related="", filename_prefix="negative_guidance/rt", image=image)
    for index in (3, 4, 6):  # r_t_plot, heatmaps, overlay
        g.node("PreviewImage", images=g.out(rt, index))
    guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0, empty=c["u"],
                    mode="standard", neg_scale=6.0, neg_start=g.out(rt, 2), neg_end=1.0, window_unit="steps",
                    neg_schedule="constant")
    save(g, custom_sample(g, model, guider, latent, steps=30, seed=1), vae, "negative_guidance/gated")
    return g.prompt


def several_negatives() -> dict:
    """Two NegativeTerms with their own windows and weights, summed into the guider's main negative."""
    g, model, vae, c, latent = base({"p": "a circle", "n": "legs", "hat": "hat", "blue": "blue"})
    hat = g.node("NegativeTerm", conditioning=c["hat"], weight=3.0, start=0.2, end=1.0, window_unit="steps",
                 schedule="constant")
    blue = g.node("NegativeTerm", conditioning=c["blue"], weight=2.0, start=0.0, end=0.6, window_unit="steps",
                 schedule="linear", terms=hat)
    guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0, empty=g.node(
        "CLIPTextEncode", text="", clip=g.out(model, 1)), mode="independent", neg_scale=4.0, neg_start=0.0,
        neg_end=1.0, window_unit="steps", neg_schedule="constant", terms=blue)
    save(g, custom_sample(g, model, guider, latent, steps=20, seed=1), vae, "negative_guidance/several")
    return g.prompt


EXAMPLES = {
    "1_standard_negative_eq9": standard_negative,
    "2_independent_scales_eq8": independent_scales,
    "3_delayed_negative_ban_et_al": delayed_negative,
    "4_attention_r_t_and_gate": attention_analysis,
    "5_several_negatives_with_windows": several_negatives,
}


def on_test_models(prompt: dict) -> dict:
    """The same prompt with the tiny test loader for a checkpoint and a 64×64 image (tests only)."""
    for node in prompt.values():
        if node["class_type"] == "CheckpointLoaderSimple":
            node.update(class_type="NegativeGuidanceTestTinySD1", inputs={"seed": 0})
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=64, height=64)
    return prompt


def main() -> None:
    import comfy_boot
    import workflows

    comfy_boot.boot(Path(tempfile.mkdtemp(prefix="examples_")))
    out = locate.PACK_ROOT / "example_workflows"
    for name, build in EXAMPLES.items():
        (out / f"{name}.json").write_text(json.dumps(workflows.to_ui(build(), workflows.node_info), indent=1) + "\n")
        print("wrote", out / f"{name}.json")


if __name__ == "__main__":
    main()
