"""Tiny SD1-shaped models built from ComfyUI's own classes, filled by a seeded generator (tests only).

A UNet with model_channels 32 and context_dim 64, a 2-layer CLIP with the SD1 tokenizer that ships with ComfyUI,
and a small AutoencoderKL. A 4-step sample takes well under 0.1 s on a CPU.
"""

from __future__ import annotations

import math

import torch

import comfy.latent_formats
import comfy.model_base
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.sdxl_clip
import comfy.supported_models_base

CPU = torch.device("cpu")
CLIP_CONFIG = {
    "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 2, "num_hidden_layers": 2,
    "vocab_size": 49408, "max_position_embeddings": 77, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
    "projection_dim": 64, "bos_token_id": 0, "eos_token_id": 49407, "pad_token_id": 1,
}
VAE_CONFIG = {"double_z": True, "z_channels": 4, "resolution": 64, "in_channels": 3, "out_ch": 3, "ch": 32,
              "ch_mult": [1, 2, 2, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}


def fill_(module: torch.nn.Module, seed: int, skip: str | tuple[str, ...] | None = None) -> None:
    """Deterministic weights: ComfyUI's ops skip init, so every parameter and float buffer (SD3's pos_embed) is set
    from one seeded generator; names starting with ``skip`` stay as they are."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted([*module.named_parameters(), *module.named_buffers()], key=lambda item: item[0]):
            if not p.is_floating_point() or (skip is not None and name.startswith(skip)):
                continue
            if name.endswith("bias"):
                p.zero_()
            elif p.ndim == 1:
                p.fill_(1.0)
            else:
                scale = 0.02 if "embedding" in name else 1 / math.sqrt(math.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=generator) * scale)


class TinySD1(comfy.supported_models_base.BASE):
    unet_config = {
        "image_size": 8, "in_channels": 4, "out_channels": 4, "model_channels": 32, "num_res_blocks": [1, 1],
        "channel_mult": [1, 2], "transformer_depth": [1, 1], "transformer_depth_output": [1, 1, 1, 1],
        "transformer_depth_middle": 1, "context_dim": 64, "use_spatial_transformer": True,
        "use_linear_in_transformer": True, "legacy": False, "adm_in_channels": None,
        "use_temporal_attention": False, "use_temporal_resblock": False, "dtype": torch.float32,
    }
    unet_extra_config = {"num_heads": 2, "num_head_channels": -1}
    latent_format = comfy.latent_formats.SD15


class TinySD15Layout(TinySD1):
    """SD1.5's block layout (16 cross-attention layers at 1, 1/2, 1/4 and 1/8 of the latent) at tiny width."""

    unet_config = TinySD1.unet_config | {
        "num_res_blocks": [2, 2, 2, 2], "channel_mult": [1, 2, 4, 4], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
        "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    }


class TinyClip(comfy.sd1_clip.SDClipModel):
    def __init__(self, device="cpu", dtype=None, model_options=None):
        super().__init__(device=device, dtype=dtype, model_options=model_options or {},
                         textmodel_json_config=CLIP_CONFIG, return_projected_pooled=False)


class TinySD1Clip(comfy.sd1_clip.SD1ClipModel):
    def __init__(self, device="cpu", dtype=None, model_options=None):
        super().__init__(device=device, dtype=dtype, model_options=model_options or {}, clip_model=TinyClip)


def seeded_model(model_class, config_class, seed: int, dtype: torch.dtype = torch.float32
                 ) -> comfy.model_patcher.ModelPatcher:
    """A MODEL of ``model_class`` (BaseModel, SDXL) built from a tiny config, weights filled from ``seed`` (the same
    fp32 draws, rounded to ``dtype``, which is also the compute dtype)."""
    model = model_class(config_class(config_class.unet_config | {"dtype": dtype}), device=CPU)
    fill_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU)


def seeded_clip(tokenizer, clip_model, seed: int, embedding_directory: str | None = None) -> comfy.sd.CLIP:
    """A CLIP of ``clip_model`` behind ``tokenizer``, weights filled from ``seed``; with ``embedding_directory``, it
    reads embeddings from there as checkpoint CLIPs read the embeddings folder."""
    clip = comfy.sd.CLIP(comfy.supported_models_base.ClipTarget(tokenizer, clip_model),
                         embedding_directory=embedding_directory)
    fill_(clip.cond_stage_model, seed)
    return clip


def tiny_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> comfy.model_patcher.ModelPatcher:
    """The tiny SD1-shaped UNet as a MODEL."""
    return seeded_model(comfy.model_base.BaseModel, TinySD1, seed, dtype)


def tiny_sd15_layout_model(seed: int = 0) -> comfy.model_patcher.ModelPatcher:
    """A tiny UNet with SD1.5's layout of cross-attention layers and resolutions, as a MODEL."""
    return seeded_model(comfy.model_base.BaseModel, TinySD15Layout, seed)


def tiny_clip(seed: int = 1, embedding_directory: str | None = None) -> comfy.sd.CLIP:
    """The tiny 2-layer CLIP with the SD1 tokenizer as a CLIP."""
    return seeded_clip(comfy.sd1_clip.SD1Tokenizer, TinySD1Clip, seed, embedding_directory)


def tiny_vae(seed: int = 2) -> comfy.sd.VAE:
    """A small random AutoencoderKL as a VAE (8× down/up-scaling like SD's)."""
    return seeded_vae(VAE_CONFIG, seed)


def seeded_vae(ddconfig: dict, seed: int) -> comfy.sd.VAE:
    """A random AutoencoderKL of ``ddconfig`` (latent channels: its z_channels) as a VAE, weights from ``seed``."""
    from comfy.ldm.models.autoencoder import AutoencoderKL

    embed_dim = ddconfig["z_channels"]
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in AutoencoderKL(ddconfig=ddconfig, embed_dim=embed_dim).state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if key.endswith("bias"):
            state[key] = torch.zeros(shape)
        elif len(shape) == 1:
            state[key] = torch.ones(shape)
        else:
            state[key] = torch.randn(shape, generator=generator) / math.sqrt(math.prod(shape[1:]))
    vae = comfy.sd.VAE(sd=state, config={"params": {"embed_dim": embed_dim, "ddconfig": ddconfig}}, device=CPU)
    if ddconfig.get("conv3d"):
        vae.latent_dim = 3  # a video VAE takes (B, C, T, H, W) latents whole, as ComfyUI's own video VAEs set it
    return vae


def encode(clip: comfy.sd.CLIP, text: str) -> list:
    """CLIPTextEncode's output for ``text``."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def clip_config(hidden: int, projection: int) -> dict:
    """A 3-layer CLIP text model config of the given width (SDXL reads the penultimate layer)."""
    return CLIP_CONFIG | {"hidden_size": hidden, "projection_dim": projection, "num_attention_heads": 4,
                          "num_hidden_layers": 3}


class TinySDXL(comfy.supported_models_base.BASE):
    """SDXL-shaped: two text encoders (context 768 + 1280 = 2048), pooled adm, depth-2 transformers."""

    unet_config = TinySD1.unet_config | {
        "transformer_depth": [0, 2], "transformer_depth_output": [0, 0, 2, 2], "transformer_depth_middle": 2,
        "context_dim": 2048, "adm_in_channels": 1280 + 6 * 256, "num_classes": "sequential",
    }
    unet_extra_config = {"num_heads": -1, "num_head_channels": 16}
    latent_format = comfy.latent_formats.SDXL


class TinySDXLClip(comfy.sdxl_clip.SDXLClipModel):
    def __init__(self, device="cpu", dtype=None, model_options=None):
        torch.nn.Module.__init__(self)
        common = dict(device=device, dtype=dtype, layer="hidden", layer_idx=-2, layer_norm_hidden_state=False,
                      model_options=model_options or {})
        self.clip_l = comfy.sd1_clip.SDClipModel(textmodel_json_config=clip_config(768, 768), **common)
        self.clip_g = comfy.sd1_clip.SDClipModel(textmodel_json_config=clip_config(1280, 1280),
                                                 return_projected_pooled=True,
                                                 special_tokens={"start": 49406, "end": 49407, "pad": 0}, **common)
        self.dtypes = {dtype}


def tiny_sdxl_model(seed: int = 0) -> comfy.model_patcher.ModelPatcher:
    """The tiny SDXL-shaped UNet as a MODEL."""
    return seeded_model(comfy.model_base.SDXL, TinySDXL, seed)


def tiny_sdxl_clip(seed: int = 1) -> comfy.sd.CLIP:
    """Two small CLIP encoders (l: 768 wide, g: 1280 wide) behind SDXL's tokenizer, as a CLIP."""
    return seeded_clip(comfy.sdxl_clip.SDXLTokenizer, TinySDXLClip, seed)
