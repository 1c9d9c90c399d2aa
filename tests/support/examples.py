"""Write example_workflows/*.json (UI format) from the API-format graphs below: python tests/support/examples.py.

Every example loads the toy concept model the pack ships (ToyConceptModelLoader), so it runs offline as it is; with
a real checkpoint, put a Load Checkpoint in its place, a 512×512 latent and prompts of your own.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))  # the harness, when run as a script

import harness  # noqa: E402
from graphs import Graph, custom_sample, ksampler  # noqa: E402

POSITIVE, NEGATIVE = "a circle with a frame", "dot"
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
    g, model, vae, c, latent = base({"p": POSITIVE, "n": NEGATIVE})
    guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0,
                    clip=g.out(model, 1), mode="independent", neg_scale=4.0, neg_start=0.0, neg_end=1.0, window_unit="steps",
                    neg_schedule="constant")
    save(g, custom_sample(g, model, guider, latent, steps=20, seed=1), vae, "negative_guidance/eq8")
    return g.prompt


def delayed_negative() -> dict:
    """Ban et al.'s setup: 50 steps, the same negative from step 0 and from step 5 (neg_start 0.1), side by side."""
    g, model, vae, c, latent = base({"p": POSITIVE, "n": NEGATIVE})
    for start, name in ((0.0, "undelayed"), (0.1, "from_step_5")):  # before step 5, p is guided against u
        patched = g.node("NegativeGuidanceCFG", model=model, clip=g.out(model, 1), neg_start=start, **STANDARD)
        save(g, ksampler(g, patched, c["p"], c["n"], latent, steps=50, seed=1), vae, f"negative_guidance/{name}")
    return g.prompt


def attention_analysis() -> dict:
    """r_t curves and heatmaps of a first run; its suggested gate start drives the guider of a second run."""
    g, model, vae, _, latent = base({})
    captured = g.node("AttentionCapture", model=model, clip=g.out(model, 1), positive_text=POSITIVE,
                      negative_text=NEGATIVE, positive_words="", negative_words="", special_tokens=False,
                      max_mb=50.0, over_cap="downsample")
    p, n = g.out(captured, 2), g.out(captured, 3)  # each prompt typed once, in the capture
    first = ksampler(g, captured, p, n, latent, steps=30, seed=1)
    image = g.node("VAEDecode", samples=first, vae=vae)
    rt = g.node("AttentionRt", capture=g.out(captured, 1), samples=first, score="frobenius", gate_fraction=0.5,
                related="", filename_prefix="negative_guidance/rt", image=image)
    for index in (3, 4, 6):  # r_t_plot, heatmaps, overlay
        g.node("PreviewImage", images=g.out(rt, index))
    guider = g.node("NegativeGuidanceGuider", model=model, positive=p, negative=n, cfg=7.0, clip=g.out(model, 1),
                    mode="standard", neg_scale=6.0, neg_start=g.out(rt, 2), neg_end=1.0, window_unit="steps",
                    neg_schedule="constant")
    save(g, custom_sample(g, model, guider, latent, steps=30, seed=1), vae, "negative_guidance/gated")
    return g.prompt


def several_negatives() -> dict:
    """Two NegativeTerms with their own windows and weights, summed into the guider's main negative."""
    g, model, vae, c, latent = base({"p": "a circle", "n": "frame", "dot": "dot", "blue": "blue"})
    dot = g.node("NegativeTerm", conditioning=c["dot"], weight=3.0, start=0.2, end=1.0, window_unit="steps",
                 schedule="constant")
    blue = g.node("NegativeTerm", conditioning=c["blue"], weight=2.0, start=0.0, end=0.6, window_unit="steps",
                 schedule="linear", terms=dot)
    guider = g.node("NegativeGuidanceGuider", model=model, positive=c["p"], negative=c["n"], cfg=7.0,
                    clip=g.out(model, 1), mode="independent", neg_scale=4.0, neg_start=0.0,
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


FLUX_DEV = dict(unet="flux1-dev.safetensors", clip_l="clip_l.safetensors", t5="t5xxl_fp16.safetensors",
                vae="ae.safetensors")


def flux_dev_attention_negative() -> dict:
    """Flux dev at cfg 1 with the real loader nodes and an attention-space negative: one model evaluation per step.

    UNETLoader (flux1-dev), DualCLIPLoader (clip_l + t5xxl_fp16, type flux), VAELoader (ae); FluxGuidance 3.5 is
    the distilled guidance, KSampler runs at cfg 1, so ComfyUI's own negative is never evaluated. The negative acts
    in attention space instead: AttentionNegativeTerm (φ = 4, the peers' nag_scale 5; τ 2.5, α 0.25) from 20% of
    the steps (Ban et al.: negatives act late), through NegativeGuidanceCFG in standard mode (whose main negative
    is off at cfg 1). Needs the four model files; the tests run it on the tiny Flux (``on_tiny_flux``).
    """
    g = Graph()
    unet = g.node("UNETLoader", unet_name=FLUX_DEV["unet"], weight_dtype="default")
    clip = g.node("DualCLIPLoader", clip_name1=FLUX_DEV["clip_l"], clip_name2=FLUX_DEV["t5"], type="flux",
                  device="default")
    vae = g.node("VAELoader", vae_name=FLUX_DEV["vae"])
    positive = g.node("FluxGuidance", guidance=3.5, conditioning=g.node(
        "CLIPTextEncode", clip=clip, text="a photograph of a quiet harbour at dawn, fishing boats, soft mist"))
    negative = g.node("CLIPTextEncode", clip=clip, text="people, text, watermark, blurry")
    term = g.node("AttentionNegativeTerm", conditioning=negative, scale=4.0, tau=2.5, alpha=0.25, start=0.2,
                  end=1.0, window_unit="steps", schedule="constant")
    patched = g.node("NegativeGuidanceCFG", model=unet, mode="standard", neg_scale=0.0, neg_start=0.0, neg_end=1.0,
                     window_unit="steps", neg_schedule="constant", terms=term)
    latent = g.node("EmptySD3LatentImage", width=1024, height=1024, batch_size=1)
    samples = ksampler(g, patched, positive, negative, latent, cfg=1.0, steps=20, seed=1, scheduler="simple")
    save(g, samples, vae, "negative_guidance/flux_dev_attention_negative")
    return g.prompt


PENDING = {  # built here, not yet written to example_workflows/ (the examples' owner regenerates them)
    "6_flux_dev_cfg1_attention_negative": flux_dev_attention_negative,
}


def on_tiny_flux(prompt: dict) -> dict:
    """The Flux dev example on the tiny Flux test loader and its tiny VAE, 64×64 (tests only)."""
    ids = {node["class_type"]: key for key, node in prompt.items()}
    loader = ids["UNETLoader"]
    prompt[loader] = {"class_type": "NegativeGuidanceTestTinyFamily",
                      "inputs": {"family": "flux", "seed": 0, "dtype": "fp32"}}
    outputs = {ids["DualCLIPLoader"]: 1, ids["VAELoader"]: 2}  # the tiny loader's CLIP and VAE
    for key in outputs:
        del prompt[key]
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and value[0] in outputs:
                node["inputs"][name] = [loader, outputs[value[0]]]
        if node["class_type"] == "EmptySD3LatentImage":
            node["inputs"].update(width=64, height=64)
    return prompt


def on_test_models(prompt: dict) -> dict:
    """The same prompt with the tiny test loader for a checkpoint and a 64×64 image (tests only)."""
    for node in prompt.values():
        if node["class_type"] == "CheckpointLoaderSimple":
            node.update(class_type="NegativeGuidanceTestTinySD1", inputs={"seed": 0})
        if node["class_type"] == "EmptyLatentImage":
            node["inputs"].update(width=64, height=64)
    return prompt


def main() -> None:
    import comfy_helpers
    import workflows

    comfy_helpers.boot(Path(tempfile.mkdtemp(prefix="examples_")))
    out = harness.PACK_ROOT / "example_workflows"
    for name, build in EXAMPLES.items():
        (out / f"{name}.json").write_text(json.dumps(workflows.to_ui(build(), workflows.node_info), indent=1) + "\n",
                                          encoding="utf-8")
        print("wrote", out / f"{name}.json")


if __name__ == "__main__":
    main()
