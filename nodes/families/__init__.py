"""Model families: for each, where its text tokens sit, which tokenizer feeds its attention and which ComfyUI hook
reads that attention. Adding a family is one module here and its tests.

A family module provides ``NAME``, ``matches(diffusion_model)``, ``text(clip, prompt) -> PromptTokens``,
``layers(diffusion_model, latent_shape) -> [LayerId]``, ``install(patched)``, its one attention site's hooks, which
the capture and the attention-space negatives share (nodes/site.py; it returns the hooks it set, by key), and
``installed_hooks(model_options)`` (the hooks in place at sampling); where its model class has variants it does not
read, ``refusal(diffusion_model)`` says why; where its blocks take an attention-space negative's context other than
as CLIPTextEncode gave it, ``negative_context(conditioning, guider)`` gives it once per sampling run (LTXV,
LTX-2, HunyuanVideo 1.5: its context with its ByT5 tokens); where its blocks read several text streams,
``CONTEXTS`` names the stream of each (LTX-2's video and audio, which an AttentionNegativeTerm's ``stream`` picks);
where a run's conditionings keep its negatives or its capture from being exact, ``negatives_refusal(diffusion_model,
entries)`` and ``capture_refusal(diffusion_model, entries)`` say why (Krea 2, LTXV, LTX-2, HunyuanVideo 1.5, NextDiT);
a family the capture reads but
attention-space negatives cannot join says why in ``NEGATIVES_REFUSED`` (NextDiT), and one whose model pads the
prompt's context with tokens of its own gives the padded length, ``context_length(tokens)`` (Z-Image, LTX-2); one whose
sampler packs several latents into one says which the maps read, ``PACKED`` (LTX-2: the first, its video); one whose
model puts tokens of its own before the prompt's in its text stream counts them per forward,
``text_prefix(diffusion_model, conds)`` (HunyuanVideo 1.5's CLIP-vision and ByT5 tokens).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .. import compat

PRESENT = {name: required for name, required in compat.FAMILIES.items() if compat.has_model(required)}
OFF = {name: found[0] for name, required in PRESENT.items() if (found := compat.problems(required))}
FAMILIES: tuple[ModuleType, ...] = tuple(  # the families whose ComfyUI surface binds in this ComfyUI
    importlib.import_module(f".{name}", __package__) for name, required in PRESENT.items()
    if compat.usable(f"the attention capture of the {name} family", required))
REFUSED: dict[str, str] = {  # model class, else diffusion model class → why the pack cannot read it (yet)
    "HunyuanVideo": "its Llama tokenizer is not in the ComfyUI the pack is tested against, so its words cannot "
                    "be mapped and checked",
    "HiDreamImageTransformer2DModel": "its blocks have no dit replace to name them, and each block reads its own "
                                      "Llama layer beside the T5 tokens",
    "NextDiT": "this ComfyUI does not number Lumina 2's and Z-Image's (NextDiT) layers (block_index, v0.33 on); "
               "attention-space negatives cannot join their stream in any ComfyUI (no dit block replace)",
    "NextDiTPixelSpace": "Z-Image's pixel-space model decodes pixels with a head of its own, which the pack does "
                         "not map yet",
    "MMDiT": "AuraFlow's register tokens and pile-T5 layout are not mapped yet",
    "ChromaRadiance": "Chroma Radiance samples pixels in 16×16 patches, not Chroma's latent in 2×2 patches, and "
                      "the pack does not map its image tokens yet",
}


class UnsupportedModel(ValueError):
    """A model whose attention the capture cannot read."""


def family_of(model) -> ModuleType:
    """The family of a MODEL, or UnsupportedModel naming it and the supported ones."""
    diffusion_model = model.get_model_object("diffusion_model")
    found = next((family for family in FAMILIES if family.matches(diffusion_model)), None)
    if found is not None:
        return found
    name = type(diffusion_model).__name__
    variant = next((why for family in FAMILIES if (why := getattr(family, "refusal", lambda _: None)(diffusion_model))),
                   None)
    reason = (variant or REFUSED.get(type(model.model).__name__)
              or REFUSED.get(name, "it is not a family the capture knows"))
    if OFF:
        off = "; ".join(f"{name}: {problem}" for name, problem in OFF.items())
        reason += f" (off in ComfyUI {compat.comfyui_version()}: {off})"
    supported = "; ".join(family.NAME for family in FAMILIES)
    raise UnsupportedModel(f"its diffusion model {name} ({type(model.model).__name__}) cannot be captured: {reason}. "
                           f"Supported: {supported}")
