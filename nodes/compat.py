"""The ComfyUI surface the pack relies on: every module, symbol, hook, signature and dict key, checked when the pack
loads.

ComfyUI changes often, and packs that swap forwards break silently. Here, a symbol that is missing or no longer
takes the parameters the pack passes, or a function that no longer puts a key the pack reads into the dict it hands
the pack's hooks (``transformer_options``, a block replace's ``args``, an attn2 replace's ``extra``), keeps the nodes
(or the model family) that need it from registering, with one log line naming the symbol and the ComfyUI version;
nothing fails mid-run. Checked on ComfyUI v0.3.64 and v0.33.0 (scripts/harness.py ``RELEASES``). What v0.33 changed
that the pack meets: nested latents reach OUTER_SAMPLE packed, with their shapes in ``latent_shapes``, and the model
as ``BaseModel.latent_shapes`` (the capture maps the first, LTX-2's video, and refuses them for any other family
before the first step; eq. 8's arithmetic is elementwise and holds on the packed tensor);
``wrap_attn`` unpacks attention tensor containers before an override sees q, k, v, and passes
``enable_gqa`` with k, v of fewer heads; ``set_model_optimized_attention`` overwrites the attention override (the
pack's run checks see that); ``inner_set_conds`` may swap the guider's model for its non-dynamic delegate (the pack
reads ``guider.model_patcher`` only once sampling starts).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

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
        found = resolve(self.module, self.name)
        if found is None:
            return f"{self.module}.{self.name} is missing"
        if self.params:
            taken = inspect.signature(found).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in taken.values()):
                absent = [p for p in self.params if p not in taken]
                if absent:
                    return f"{self.module}.{self.name} no longer takes {', '.join(absent)}"
        return None


@dataclass(frozen=True)
class Key:
    """``module.setter`` must still put the key ``name`` into the dict it hands the pack's hooks: its source names
    the key as a string literal."""

    module: str
    setter: str
    name: str

    def problem(self) -> str | None:
        found = resolve(self.module, self.setter)
        try:
            source = inspect.getsource(found)
        except (OSError, TypeError):
            return f"{self.module}.{self.setter} is missing"
        if f'"{self.name}"' not in source and f"'{self.name}'" not in source:
            return f"{self.module}.{self.setter} no longer sets '{self.name}'"
        return None


def resolve(module: str, name: str):
    """``module.name`` (a dotted attribute path) in the running ComfyUI, or None."""
    try:
        found = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found


def needs(module: str, *names: str) -> tuple[Need, ...]:
    return tuple(Need(module, name) for name in names)


def keys(module: str, setter: str, *names: str) -> tuple[Key, ...]:
    return tuple(Key(module, setter, name) for name in names)


BATCH_KEYS = keys("comfy.samplers", "_calc_cond_batch", "cond_or_uncond", "uuids", "sigmas")  # transformer_options
DIT_BLOCK_KEYS = ("img", "txt", "pe", "original_block")  # a dit double_block replace's args and extra
LTXV_SETTERS = ("LTXVModel._process_transformer_blocks", "LTXVModel._forward")  # v0.3.64 ran its blocks in _forward
LTXV_BLOCKS = next((name for name in LTXV_SETTERS if resolve("comfy.ldm.lightricks.model", name)), LTXV_SETTERS[-1])


SAMPLING = (
    *needs("comfy.patcher_extension", "WrappersMP.OUTER_SAMPLE", "WrappersMP.SAMPLER_SAMPLE"),
    Need("comfy.samplers", "calc_cond_batch", ("model", "conds", "x_in", "timestep", "model_options")),
    Need("comfy.samplers", "CFGGuider.predict_noise", ("x", "timestep", "model_options", "seed")),
    Need("comfy.samplers", "CFGGuider.outer_sample", ("noise", "latent_image", "sampler", "sigmas")),
    Need("comfy.samplers", "CFGGuider.inner_set_conds", ("conds",)),
    Need("comfy.samplers", "cfg_function", ("cond_pred", "uncond_pred", "cond_scale")),
    Need("comfy.sampler_helpers", "convert_cond", ("cond",)),
    Need("node_helpers", "conditioning_set_values", ("conditioning", "values")),
    *needs("comfy.model_patcher", "ModelPatcher.clone", "ModelPatcher.add_wrapper_with_key",
           "ModelPatcher.set_model_sampler_calc_cond_batch_function", "ModelPatcher.get_model_object"),
)
SITE = (  # the attention site's APPLY_MODEL wrapper (nodes/site.py), which the capture and the negatives share
    *needs("comfy.patcher_extension", "WrappersMP.APPLY_MODEL"),
    Need("comfy.model_base", "BaseModel.apply_model", ("x", "t", "c_concat", "c_crossattn", "control",
                                                       "transformer_options")),
)
CAPTURE = (
    *SITE,
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
    *BATCH_KEYS,
)
NEGATIVES = (  # attention-space negatives (AttentionNegativeTerm), checked when a model is patched with them
    *SITE,
    Need("comfy.model_patcher", "ModelPatcher.set_model_attn2_patch", ("patch",)),
    Need("comfy.model_patcher", "ModelPatcher.set_model_attn2_replace", ("patch", "block_name", "number")),
    Need("comfy.model_patcher", "ModelPatcher.set_model_patch_replace", ("patch", "name", "block_name", "number")),
    Need("comfy.ldm.modules.attention", "wrap_attn"),  # reads transformer_options["optimized_attention_override"]
    Need("comfy.ldm.modules.attention", "optimized_attention", ("q", "k", "v", "heads")),
    Need("comfy.ldm.modules.attention", "BasicTransformerBlock.forward", ("transformer_options",)),  # attn2_patch
    *BATCH_KEYS,
)
FAMILIES = {
    "unet": (*needs("comfy.ldm.modules.diffusionmodules.openaimodel", "UNetModel", "Downsample"),
             *needs("comfy.ldm.modules.attention", "SpatialTransformer"),
             Need("comfy.ldm.modules.attention", "CrossAttention.forward", ("transformer_options",)),
             *keys("comfy.ldm.modules.diffusionmodules.openaimodel", "UNetModel._forward", "block"),
             *keys("comfy.ldm.modules.attention", "SpatialTransformer.forward", "activations_shape", "block_index"),
             *keys("comfy.ldm.modules.attention", "BasicTransformerBlock.forward", "n_heads", "attn_precision")),
    "sd3": (*needs("comfy.ldm.modules.diffusionmodules.mmdit", "MMDiT"),
            Need("comfy.ldm.modules.diffusionmodules.mmdit", "_block_mixing", ("transformer_options",)),
            *keys("comfy.ldm.modules.diffusionmodules.mmdit", "MMDiT.forward_core_with_concat", "img", "txt",
                  "original_block")),
    "flux": (*needs("comfy.ldm.flux.model", "Flux"), *needs("comfy.ldm.chroma.model", "Chroma"),
             Need("comfy.ldm.flux.math", "attention", ("q", "k", "v", "pe", "mask", "transformer_options")),
             *keys("comfy.ldm.flux.model", "Flux.forward_orig", *DIT_BLOCK_KEYS),
             *keys("comfy.ldm.chroma.model", "Chroma.forward_orig", *DIT_BLOCK_KEYS)),
    "qwen_image": (*needs("comfy.ldm.qwen_image.model", "QwenImageTransformer2DModel"),
                   Need("comfy.ldm.qwen_image.model", "Attention.forward", ("transformer_options",)),
                   *keys("comfy.ldm.qwen_image.model", "QwenImageTransformer2DModel._forward", *DIT_BLOCK_KEYS)),
    "wan": (*needs("comfy.ldm.wan.model", "WanModel", "WanI2VCrossAttention"),
            Need("comfy.ldm.wan.model", "WanT2VCrossAttention.forward", ("transformer_options",)),
            *keys("comfy.ldm.wan.model", "WanModel.forward_orig", *DIT_BLOCK_KEYS)),
    "ltxv": (*needs("comfy.ldm.lightricks.model", "LTXVModel"),
             Need("comfy.ldm.lightricks.model", "CrossAttention.forward", ("mask", "transformer_options")),
             *keys("comfy.ldm.lightricks.model", LTXV_BLOCKS, "img", "txt", "attention_mask", "original_block")),
    "ltxav": (*needs("comfy.ldm.lightricks.av_model", "LTXAVModel", "LTXAVModel.preprocess_text_embeds"),
              Need("comfy.ldm.lightricks.model", "CrossAttention.forward", ("mask", "transformer_options")),
              *keys("comfy.ldm.lightricks.av_model", "LTXAVModel._process_transformer_blocks", "img", "v_context",
                    "a_context", "original_block", "stg_skip_self_attn"),
              *keys("comfy.ldm.lightricks.av_model", "BasicAVTransformerBlock.forward", "run_vx", "run_ax")),
    "hunyuan_video15": (*needs("comfy.model_base", "HunyuanVideo15"),  # v0.3.64 had no HunyuanVideo 1.5
                        *needs("comfy.ldm.hunyuan_video.model", "HunyuanVideo"),
                        Need("comfy.ldm.hunyuan_video.model", "TokenRefiner.forward",
                             ("x", "timesteps", "mask", "transformer_options")),
                        Need("comfy.ldm.flux.math", "attention", ("q", "k", "v", "pe", "mask", "transformer_options")),
                        *keys("comfy.ldm.hunyuan_video.model", "HunyuanVideo.forward_orig", *DIT_BLOCK_KEYS,
                              "attention_mask")),
    "krea2": (*needs("comfy.ldm.krea2.model", "SingleStreamDiT", "SingleStreamDiT._unpack_context"),
              Need("comfy.ldm.krea2.model", "TextFusionTransformer.forward", ("x", "mask", "transformer_options")),
              Need("comfy.ldm.krea2.model", "Attention.forward", ("transformer_options",)),
              *keys("comfy.ldm.krea2.model", "SingleStreamDiT._forward", "post_input", "img_slice", "block_index",
                    "block_type", "img", "txt", "img_ids", "txt_ids")),
    "nextdit": (*needs("comfy.ldm.lumina.model", "pad_zimage", "NextDiT"),  # Z-Image's NextDiT, which numbers its
                # layers; v0.3.64's does not, so the family is left out there (families.REFUSED says why)
                Need("comfy.ldm.lumina.model", "JointAttention.forward", ("transformer_options",)),
                *keys("comfy.ldm.lumina.model", "NextDiT._forward", "block_index", "block_type")),
    "kandinsky5": (*needs("comfy.ldm.kandinsky5.model", "Kandinsky5", "Kandinsky5.rope_encode_1d"),
                   Need("comfy.ldm.kandinsky5.model", "CrossAttention.forward", ("transformer_options",)),
                   Need("comfy.ldm.kandinsky5.model", "TransformerEncoderBlock.forward",
                        ("x", "time_embed", "freqs", "transformer_options")),
                   *keys("comfy.ldm.kandinsky5.model", "Kandinsky5.forward_orig", "x", "context", "time_embed",
                         "freqs", "transformer_options", "original_block")),
}
TOY = (
    *needs("comfy.model_base", "BaseModel"), *needs("comfy.supported_models_base", "BASE", "ClipTarget"),
    *needs("comfy.sd1_clip", "SDClipModel", "SD1ClipModel", "SD1Tokenizer"), *needs("comfy.sd", "CLIP", "VAE"),
    *needs("comfy.latent_formats", "ChromaRadiance"), *needs("comfy.model_patcher", "ModelPatcher"),
)


def problems(required: Iterable[Need | Key]) -> list[str]:
    return [p for p in (need.problem() for need in required) if p is not None]


def comfyui_version() -> str:
    try:
        return importlib.import_module("comfyui_version").__version__
    except (ImportError, AttributeError):
        return "of unknown version"


def has_model(required: Sequence[Need | Key]) -> bool:
    """Whether this ComfyUI has the model a family's surface starts with (v0.3.64 had no Kandinsky 5): a family it
    lacks is left out without a warning, since no model of it can be loaded."""
    return resolve(required[0].module, required[0].name) is not None


def usable(what: str, required: Iterable[Need | Key]) -> bool:
    """Whether everything ``what`` needs binds; if not, log one line naming the first missing symbol."""
    found = problems(required)
    if found:
        log.warning("negative-guidance: %s not registered: ComfyUI %s: %s", what, comfyui_version(), found[0])
    return not found


def latent_shapes(latent_image, wrapper_kwargs: dict) -> list[tuple[int, ...]]:
    """The shapes of the latents an OUTER_SAMPLE wrapper's run samples. Since v0.33 nested latents (LTX-2's video and
    audio) reach OUTER_SAMPLE packed into one flat tensor, their own shapes in the keyword ``latent_shapes``; before,
    and for a single latent, the latent's own shape."""
    return [tuple(shape) for shape in wrapper_kwargs.get("latent_shapes") or [latent_image.shape]]


def packed_shapes(model) -> list[tuple[int, ...]] | None:
    """The shapes of the latents packed into the one a model (BaseModel) samples, as the sampler sets them (LTX-2's
    video and audio, v0.33 on), or None for one latent."""
    shapes = getattr(model, "latent_shapes", None)
    return [tuple(shape) for shape in shapes] if shapes and len(shapes) > 1 else None


def first_shape(model, x: torch.Tensor) -> tuple[int, ...]:
    """The shape of the latent whose tokens the maps read: the first of those packed in ``x`` (LTX-2's video), or
    ``x``'s own."""
    shapes = packed_shapes(model)
    return tuple(x.shape) if shapes is None else shapes[0]


def first_latent(model, x: torch.Tensor) -> torch.Tensor:
    """The first of the latents packed in ``x`` (B, 1, Σ sizes), in its own shape; ``x`` itself when not packed."""
    shapes = packed_shapes(model)
    if shapes is None:
        return x
    return x[..., :math.prod(shapes[0][1:])].reshape(x.shape[0], *shapes[0][1:])


def packed(samples):
    """A sampler's output as its OUTER_SAMPLE wrapper sees it: latents sampled together (a NestedTensor), packed."""
    if getattr(samples, "is_nested", False):
        import comfy.utils

        return comfy.utils.pack_latents(samples.unbind())[0]
    return samples


OWN_STEPS = {"dpm_fast_function": "dpm_fast", "dpm_adaptive_function": "dpm_adaptive"}  # comfy.samplers.ksampler


def own_steps_sampler(sampler) -> str | None:
    """The name of a sampler that picks its own steps between the schedule's ends (dpm_fast, dpm_adaptive: ComfyUI
    hands them the schedule's first and last σ only), or None for one that steps through the schedule."""
    return OWN_STEPS.get(getattr(getattr(sampler, "sampler_function", None), "__name__", None))
