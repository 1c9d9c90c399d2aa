"""The toy concept model, built from ComfyUI's own classes (imports ComfyUI; used by the loader node and training).

An SD1-shaped UNet working in pixel space (3 channels, 32×32, latent = 2·image − 1 through ComfyUI's pixel-space
VAE), conditioned by a 2-layer, 64-wide CLIP text encoder behind the SD1 tokenizer that ships with ComfyUI.
Sampling uses SD1's discrete schedule (scaled-linear β from 0.00085 to 0.012, 1000 steps); the network predicts
v = α·ε − σ_vp·x₀ (Salimans & Ho 2022, arXiv 2202.00512), ComfyUI's ModelType.V_PREDICTION, as SD 2's 768-v model
does, so the stock samplers run it unchanged. The weights file names its parametrisation in its metadata.
"""

from __future__ import annotations

from pathlib import Path

import safetensors
import safetensors.torch
import torch

import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models_base

WEIGHTS = Path(__file__).parent / "weights" / "toy_concepts.safetensors"
UNET_PREFIX, CLIP_PREFIX = "model.diffusion_model.", "cond_stage_model."
PREDICTIONS = {"eps": comfy.model_base.ModelType.EPS, "v": comfy.model_base.ModelType.V_PREDICTION}
CLIP_CONFIG = {
    "hidden_size": 64, "intermediate_size": 256, "num_attention_heads": 2, "num_hidden_layers": 2,
    "vocab_size": 49408, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
    "projection_dim": 64, "bos_token_id": 0, "eos_token_id": 49407, "pad_token_id": 1,
}


class ToyPixels(comfy.latent_formats.ChromaRadiance):
    """ChromaRadiance's pixel space (3 channels, latent = 2·image − 1), sampled at 1/8 of an EmptyLatentImage's size:
    ComfyUI since 2026 (v0.33) resizes an empty latent to the model's ratio, and the toy model draws 32×32 pictures."""

    spacial_downscale_ratio = 8


class ToyConcepts(comfy.supported_models_base.BASE):
    """Three levels (32, 16 and 8 px; 32, 64 and 64 channels), one ResBlock each, cross-attention at 16 and 8 px
    and in the middle block, context 64."""

    unet_config = {
        "image_size": 32, "in_channels": 3, "out_channels": 3, "model_channels": 32, "num_res_blocks": [1, 1, 1],
        "channel_mult": [1, 2, 2], "transformer_depth": [0, 1, 1], "transformer_depth_output": [0, 0, 1, 1, 1, 1],
        "transformer_depth_middle": 1, "context_dim": 64, "use_spatial_transformer": True,
        "use_linear_in_transformer": True, "legacy": False, "adm_in_channels": None,
        "use_temporal_attention": False, "use_temporal_resblock": False, "dtype": torch.float32,
    }
    unet_extra_config = {"num_heads": 2, "num_head_channels": -1}
    latent_format = ToyPixels


class ToyTextEncoder(comfy.sd1_clip.SDClipModel):
    def __init__(self, device="cpu", dtype=None, model_options=None):
        super().__init__(device=device, dtype=dtype, model_options=model_options or {},
                         textmodel_json_config=CLIP_CONFIG, return_projected_pooled=False)


class ToyClip(comfy.sd1_clip.SD1ClipModel):
    def __init__(self, device="cpu", dtype=None, model_options=None):
        super().__init__(device=device, dtype=dtype, model_options=model_options or {}, clip_model=ToyTextEncoder)


def new_unet(prediction: str = "v", device=None) -> comfy.model_base.BaseModel:
    """The BaseModel of ToyConcepts predicting ``prediction`` ("v" or "eps"); ComfyUI's ops leave its weights
    uninitialised."""
    return comfy.model_base.BaseModel(ToyConcepts(ToyConcepts.unet_config), model_type=PREDICTIONS[prediction],
                                      device=device)


def pixel_vae() -> comfy.sd.VAE:
    """ComfyUI's pixel-space VAE: VAEDecode maps the latent's [-1, 1] to the image's [0, 1]."""
    return comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)})


def save(unet: torch.nn.Module, text_encoder: torch.nn.Module, path: Path, prediction: str) -> None:
    """Both networks in one fp16 safetensors file, under checkpoint-style prefixes, the parametrisation in its
    metadata."""
    tensors = {UNET_PREFIX + k: v for k, v in unet.state_dict().items()}
    tensors |= {CLIP_PREFIX + k: v for k, v in text_encoder.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file({k: v.detach().to(torch.float16).contiguous() for k, v in tensors.items()}, str(path),
                                metadata={"prediction": prediction})


def split(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}


def load(path: Path = WEIGHTS) -> tuple[comfy.model_patcher.ModelPatcher, comfy.sd.CLIP, comfy.sd.VAE]:
    """MODEL, CLIP and VAE of the toy concept model from its safetensors file (every key must match)."""
    with safetensors.safe_open(str(path), framework="pt") as handle:
        prediction = handle.metadata()["prediction"]
    tensors = safetensors.torch.load_file(str(path))
    offload = comfy.model_management.unet_offload_device()
    base = new_unet(prediction, device=offload)
    base.diffusion_model.load_state_dict(split(tensors, UNET_PREFIX), strict=True)
    model = comfy.model_patcher.ModelPatcher(base, load_device=comfy.model_management.get_torch_device(),
                                             offload_device=offload)
    clip = comfy.sd.CLIP(comfy.supported_models_base.ClipTarget(comfy.sd1_clip.SD1Tokenizer, ToyClip))
    clip.cond_stage_model.load_state_dict(split(tensors, CLIP_PREFIX), strict=True)
    return model, clip, pixel_vae()
