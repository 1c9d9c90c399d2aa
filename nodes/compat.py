"""The ComfyUI surface the pack relies on: every module, symbol, hook and signature, checked when the pack loads.

ComfyUI changes often, and packs that swap forwards break silently. Here, a symbol that is missing or no longer
takes the parameters the pack passes keeps the nodes (or the model family) that need it from registering, with one
log line naming the symbol and the ComfyUI version; nothing fails mid-run. Written against ComfyUI v0.3.64.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Need:
    """``module.name`` (a dotted attribute path) must exist and, when ``params`` is given, its signature must take
    those parameters."""

    module: str
    name: str
    params: tuple[str, ...] = ()

    def problem(self) -> str | None:
        """What is wrong with this need in the running ComfyUI, or None."""
        try:
            found = importlib.import_module(self.module)
            for part in self.name.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            return f"{self.module}.{self.name} is missing"
        if self.params:
            taken = inspect.signature(found).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in taken.values()):
                absent = [p for p in self.params if p not in taken]
                if absent:
                    return f"{self.module}.{self.name} no longer takes {', '.join(absent)}"
        return None


def needs(module: str, *names: str) -> tuple[Need, ...]:
    return tuple(Need(module, name) for name in names)


SAMPLING = (
    *needs("comfy.patcher_extension", "WrappersMP.OUTER_SAMPLE", "WrappersMP.SAMPLER_SAMPLE"),
    Need("comfy.samplers", "calc_cond_batch", ("model", "conds", "x_in", "timestep", "model_options")),
    Need("comfy.samplers", "CFGGuider.predict_noise", ("x", "timestep", "model_options", "seed")),
    Need("comfy.samplers", "CFGGuider.outer_sample", ("noise", "latent_image", "sampler", "sigmas")),
    Need("comfy.samplers", "cfg_function", ("cond_pred", "uncond_pred", "cond_scale")),
    Need("comfy.sampler_helpers", "convert_cond", ("cond",)),
    Need("node_helpers", "conditioning_set_values", ("conditioning", "values")),
    *needs("comfy.model_patcher", "ModelPatcher.clone", "ModelPatcher.add_wrapper_with_key",
           "ModelPatcher.set_model_sampler_calc_cond_batch_function", "ModelPatcher.get_model_object"),
)
CAPTURE = (
    *needs("comfy.patcher_extension", "WrappersMP.PREDICT_NOISE", "WrappersMP.CALC_COND_BATCH"),
    Need("comfy.ldm.modules.attention", "wrap_attn"),  # reads transformer_options["optimized_attention_override"]
    Need("comfy.ldm.modules.attention", "optimized_attention", ("q", "k", "v", "heads")),
    Need("comfy.ldm.modules.attention", "attention_basic.__wrapped__"),  # ComfyUI's attention goes through wrap_attn
    Need("comfy.model_patcher", "ModelPatcher.set_model_attn2_replace", ("patch", "block_name", "number")),
    Need("comfy.model_patcher", "ModelPatcher.set_model_patch_replace", ("patch", "name", "block_name", "number")),
    Need("folder_paths", "get_save_image_path", ("filename_prefix", "output_dir")),
    *needs("folder_paths", "get_output_directory"),
    *needs("comfy.model_management", "intermediate_device"),
    *needs("comfy.utils", "ProgressBar"),
    Need("comfy.sd1_clip", "SDTokenizer.tokenize_with_weights", ("text", "return_word_ids")),
)
NEGATIVES = (  # attention-space negatives (AttentionNegativeTerm), checked when a model is patched with them
    Need("comfy.model_patcher", "ModelPatcher.set_model_attn2_patch", ("patch",)),
    Need("comfy.model_patcher", "ModelPatcher.set_model_attn2_replace", ("patch", "block_name", "number")),
    Need("comfy.model_patcher", "ModelPatcher.set_model_patch_replace", ("patch", "name", "block_name", "number")),
    Need("comfy.ldm.modules.attention", "wrap_attn"),  # reads transformer_options["optimized_attention_override"]
    Need("comfy.ldm.modules.attention", "optimized_attention", ("q", "k", "v", "heads")),
    Need("comfy.ldm.modules.attention", "BasicTransformerBlock.forward", ("transformer_options",)),  # attn2_patch
)
FAMILIES = {
    "unet": (*needs("comfy.ldm.modules.diffusionmodules.openaimodel", "UNetModel", "Downsample"),
             *needs("comfy.ldm.modules.attention", "SpatialTransformer"),
             Need("comfy.ldm.modules.attention", "CrossAttention.forward", ("transformer_options",))),
    "sd3": (*needs("comfy.ldm.modules.diffusionmodules.mmdit", "MMDiT"),
            Need("comfy.ldm.modules.diffusionmodules.mmdit", "_block_mixing", ("transformer_options",))),
    "flux": (*needs("comfy.ldm.flux.model", "Flux"), *needs("comfy.ldm.chroma.model", "Chroma"),
             Need("comfy.ldm.flux.math", "attention", ("q", "k", "v", "pe", "mask", "transformer_options"))),
    "qwen_image": (*needs("comfy.ldm.qwen_image.model", "QwenImageTransformer2DModel"),
                   Need("comfy.ldm.qwen_image.model", "Attention.forward", ("transformer_options",))),
    "wan": (*needs("comfy.ldm.wan.model", "WanModel", "WanI2VCrossAttention"),
            Need("comfy.ldm.wan.model", "WanT2VCrossAttention.forward", ("transformer_options",))),
}
TOY = (
    *needs("comfy.model_base", "BaseModel"), *needs("comfy.supported_models_base", "BASE", "ClipTarget"),
    *needs("comfy.sd1_clip", "SDClipModel", "SD1ClipModel", "SD1Tokenizer"), *needs("comfy.sd", "CLIP", "VAE"),
    *needs("comfy.latent_formats", "ChromaRadiance"), *needs("comfy.model_patcher", "ModelPatcher"),
)


def problems(required: Iterable[Need]) -> list[str]:
    return [p for p in (need.problem() for need in required) if p is not None]


def comfyui_version() -> str:
    try:
        return importlib.import_module("comfyui_version").__version__
    except (ImportError, AttributeError):
        return "of unknown version"


def usable(what: str, required: Iterable[Need]) -> bool:
    """Whether everything ``what`` needs binds; if not, log one line naming the first missing symbol."""
    found = problems(required)
    if found:
        log.warning("negative-guidance: %s not registered: ComfyUI %s: %s", what, comfyui_version(), found[0])
    return not found
