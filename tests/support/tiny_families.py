"""Tiny seeded models of every family the pack supports, built from ComfyUI's own classes (tests only).

A diffusion model subclasses the real ``comfy.supported_models`` config with a tiny ``unet_config``, so it has the
real ``model_base`` class, model sampling (shift) and latent format. A CLIP is a ``comfy.sd.CLIP`` of the family's
real tokenizer and text encoder classes; each encoder is made tiny through ComfyUI's ``<name>_model_config`` option
and its features (and pooled vector) are zero-padded to the real width. So ``clip.encode_from_tokens_scheduled(
clip.tokenize(text))`` gives the real token layout, widths and extra keys.

Stand-ins, where this ComfyUI has no tokenizer file: SentencePiece models for umT5 (Wan) and Gemma (Lumina2), trained
here on a fixed text, and a byte-level tokenizer.json for Llama 3 (HunyuanVideo, HiDream) with the real special
tokens at their real ids. The Qwen2.5-VL vision tower is allocated by ComfyUI's class but never filled or run.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import harness
import tiny
import torch

import comfy.ldm.chroma.model
import comfy.ldm.chroma_radiance.model
import comfy.ldm.flux.model
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.sdxl_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.text_encoders.aura_t5
import comfy.text_encoders.flux
import comfy.text_encoders.hidream
import comfy.text_encoders.hunyuan_video
import comfy.text_encoders.lt
import comfy.text_encoders.lumina2
import comfy.text_encoders.pixart_t5
import comfy.text_encoders.qwen_image
import comfy.text_encoders.sd2_clip
import comfy.text_encoders.sd3_clip
import comfy.text_encoders.wan

CPU = torch.device("cpu")
PIXELS = 64  # every tiny picture is 64×64 pixels
# pixels per latent cell where it is not 8
DOWNSCALE = {"chroma_radiance": 1, "flux2_klein": 16, "flux2_dev": 16, "ltxv": 32, "hunyuan_video15": 16}

# Tiny text encoders, by ComfyUI model name (the <name>_model_config option); widths are the real models'.
CLIP_TINY = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 3,
             "projection_dim": 32}
T5_TINY = {"d_model": 32, "d_ff": 64, "d_kv": 16, "num_heads": 2, "num_layers": 2}
LLM_TINY = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 1, "num_key_value_heads": 1}
SPM_VOCAB = 512
TEXT_ENCODERS = {  # name: (tiny config, real width)
    "clip_l": (CLIP_TINY, 768),
    "clip_h": (CLIP_TINY, 1024),
    "clip_g": (CLIP_TINY, 1280),
    "t5xxl": (T5_TINY, 4096),
    "umt5xxl": (T5_TINY | {"vocab_size": SPM_VOCAB}, 4096),
    "pile_t5xl": (T5_TINY, 2048),
    "qwen25_7b": (LLM_TINY | {"num_hidden_layers": 2}, 3584),
    "gemma2_2b": (LLM_TINY | {"num_hidden_layers": 3, "vocab_size": SPM_VOCAB}, 2304),
    "llama": (LLM_TINY | {"num_hidden_layers": 4}, 4096),  # HunyuanVideo reads layer −3 (real: 32 layers)
    "qwen3_4b": (LLM_TINY | {"num_hidden_layers": 28}, 2560),  # Flux.2 Klein reads layers 9, 18 and 27
    "qwen3vl_4b": (LLM_TINY | {"num_hidden_layers": 36}, 64),  # Krea 2 reads 12 layers, 2 … 35 (tiny: 64 wide)
    "gemma3_12b": (LLM_TINY | {"num_hidden_layers": 2, "vocab_size": SPM_VOCAB}, None),  # LTX-2 projects every layer
    "mistral3_24b": (LLM_TINY | {"num_hidden_layers": 31, "vocab_size": 512}, 5120),  # Flux.2 dev: 10, 20, 30
}
SPM_TEXT = (
    "a photo of a cat sitting on a red chair next to a window, blurry, dog, low quality, watermark, text, "
    "a painting of a mountain lake at sunset with pine trees and clouds, oil on canvas, bright colours, "
    "portrait of an old man with a beard, studio lighting, sharp focus, highly detailed, 4k, film grain, "
    "a bowl of fruit on a wooden table, apples, oranges, grapes, still life, soft shadows, cinematic, "
    "an empty street at night in the rain, neon signs, reflections, people walking, cars, a bicycle"
)


def pad_features(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` with zeros appended to its last dimension up to ``width``."""
    return torch.nn.functional.pad(t, (0, width - t.shape[-1]))


def widen(width: int):
    """A forward hook that zero-pads an encoder's features and pooled vector to ``width``."""

    def hook(module, args, output):
        z, pooled, *extra = output
        return (pad_features(z, width), None if pooled is None else pad_features(pooled, width), *extra)

    return hook


@functools.cache
def sentencepiece_model(pad: int, eos: int, unk: int, bos: int) -> bytes:
    """A deterministic SentencePiece BPE model (byte fallback, SPM_VOCAB pieces) with the given special ids."""
    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(SPM_TEXT.split(", ")), model_writer=buffer, vocab_size=SPM_VOCAB, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, pad_id=pad, eos_id=eos, unk_id=unk, bos_id=bos,
        num_threads=1, minloglevel=2,
    )
    return buffer.getvalue()


def umt5_tokenizer_data() -> dict:
    """tokenizer_data of a Wan CLIP: umT5's special ids (pad 0, eos 1, unk 2, no bos)."""
    return {"spiece_model": sentencepiece_model(pad=0, eos=1, unk=2, bos=-1)}


MISTRAL_SPECIALS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "<pad>")
MISTRAL_WORDS = ("cat", "photo", "dog", "blurry", "red", "chair", " a", " of", " the", " cat", " photo", " dog", "ur",
                 " bl", "ry")


@functools.cache
def tekken_tokenizer_data() -> dict:
    """tokenizer_data of a Flux.2 dev CLIP: a small Mistral tekken vocabulary (its tokenizer travels in the text
    encoder's checkpoint): the 256 bytes, a few merged words, and Mistral's special tokens, <s> 1 and <pad> 11."""
    specials = [{"rank": rank, "token_str": name} for rank, name in enumerate(MISTRAL_SPECIALS[:7])]
    specials += [{"rank": rank, "token_str": f"<SPECIAL_{rank}>"} for rank in range(7, 16)]
    specials[11] = {"rank": 11, "token_str": MISTRAL_SPECIALS[7]}
    pieces = [bytes([b]) for b in range(256)]
    for word in MISTRAL_WORDS:  # every prefix, so that each merge's halves are tokens
        pieces += [word[:i].encode() for i in range(2, len(word) + 1) if word[:i].encode() not in pieces]
    vocab = [{"rank": rank, "token_bytes": base64.b64encode(piece).decode()} for rank, piece in enumerate(pieces)]
    config = {"default_num_special_tokens": len(specials), "default_vocab_size": len(specials) + len(vocab)}
    data = json.dumps({"config": config, "vocab": vocab, "special_tokens": specials}).encode()
    return {"tekken_model": torch.frombuffer(bytearray(data), dtype=torch.uint8)}


def gemma_tokenizer_data() -> dict:
    """tokenizer_data of a Lumina2 CLIP: Gemma's special ids (pad 0, eos 1, bos 2, unk 3)."""
    return {"spiece_model": sentencepiece_model(pad=0, eos=1, unk=3, bos=2)}


@functools.cache
def llama3_tokenizer_dir() -> tempfile.TemporaryDirectory:
    """A temporary folder (removed at exit) with ComfyUI's Llama 3 tokenizer_config.json and a stand-in byte-level
    tokenizer.json.

    The model vocabulary fills ids 0–127999 (the 256 byte symbols, 'user' = 882 and '\\n\\n' = 271 as in Llama 3,
    the rest unreachable fillers), so the added special tokens keep their real ids 128000–128258.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    config = Path(comfy.text_encoders.hunyuan_video.__file__).parent / "llama_tokenizer" / "tokenizer_config.json"
    special = json.loads(config.read_text(encoding="utf-8"))["added_tokens_decoder"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    named = {"us": 256, "er": 257, "ĊĊ": 271, "user": 882}
    vocab = {symbol: i for i, symbol in enumerate(alphabet)} | named
    taken = set(vocab.values())
    vocab |= {f"<filler_{i}>": i for i in range(128000) if i not in taken}
    bpe = Tokenizer(models.BPE(vocab, [("Ċ", "Ċ"), ("u", "s"), ("e", "r"), ("us", "er")]))
    split = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")  # Llama 3's pre-tokenizer split
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                       special_tokens=[("<|begin_of_text|>", 128000)])
    bpe.add_special_tokens([special[str(i)]["content"] for i in sorted(map(int, special))])
    moved = {i: t["content"] for i, t in special.items() if bpe.token_to_id(t["content"]) != int(i)}
    if moved:
        raise RuntimeError(f"stand-in Llama 3 tokenizer: special tokens off their ids: {moved}")
    folder = tempfile.TemporaryDirectory(prefix="llama3-stand-in-")
    bpe.save(str(Path(folder.name) / "tokenizer.json"))
    (Path(folder.name) / "tokenizer_config.json").write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


class Llama3Tokenizer(comfy.text_encoders.hunyuan_video.LLAMA3Tokenizer):
    """ComfyUI's LLAMA3Tokenizer settings on the stand-in tokenizer.json, loaded as it is (transformers 5's
    LlamaTokenizerFast would rebuild it with Llama 2's Metaspace pre-tokenizer and renumber the special tokens)."""

    def __init__(self, embedding_directory=None, tokenizer_data=None, min_length=256, pad_token=128258):
        from transformers import PreTrainedTokenizerFast

        comfy.sd1_clip.SDTokenizer.__init__(
            self, llama3_tokenizer_dir().name, embedding_directory=embedding_directory, pad_with_end=False,
            embedding_size=4096, embedding_key="llama", tokenizer_class=PreTrainedTokenizerFast, has_start_token=True,
            has_end_token=False, pad_to_max_length=False, max_length=99999999, pad_token=pad_token,
            min_length=min_length, tokenizer_data=tokenizer_data or {},
        )


class HunyuanVideoTokenizer(comfy.text_encoders.hunyuan_video.HunyuanVideoTokenizer):
    """ComfyUI's HunyuanVideo tokenizer (CLIP-L and the templated Llama 3 prompt) on the stand-in Llama 3 (its own
    Llama tokenizer, built by ``super().__init__`` from tokenizer_config.json alone, is replaced)."""

    def __init__(self, embedding_directory=None, tokenizer_data=None):
        super().__init__(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data or {})
        self.llama = Llama3Tokenizer(embedding_directory, tokenizer_data, min_length=1)


class HiDreamTokenizer(comfy.text_encoders.hidream.HiDreamTokenizer):
    """ComfyUI's HiDream tokenizer (CLIP-L, CLIP-G, T5 and Llama 3, 128 tokens for T5 and Llama) on the stand-in
    Llama 3, replacing its own as HunyuanVideoTokenizer does."""

    def __init__(self, embedding_directory=None, tokenizer_data=None):
        super().__init__(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data or {})
        self.llama = Llama3Tokenizer(embedding_directory, tokenizer_data, min_length=128, pad_token=128009)


# The tiny diffusion models: the real config classes, the real checkpoints' keys, tiny widths and depths.
class SD1(comfy.supported_models.SD15):
    unet_config = tiny.TinySD1.unet_config | {"context_dim": 768}
    unet_extra_config = tiny.TinySD1.unet_extra_config


class SD2(comfy.supported_models.SD20):  # SD2.x: OpenCLIP-H context (1024), attention upcast to fp32
    unet_config = tiny.TinySD1.unet_config | {"context_dim": 1024}
    unet_extra_config = {"num_heads": -1, "num_head_channels": 16, "attn_precision": torch.float32}


class SDXL(comfy.supported_models.SDXL):
    unet_config = tiny.TinySDXL.unet_config
    unet_extra_config = tiny.TinySDXL.unet_extra_config


class SD3(comfy.supported_models.SD3):  # SD3.5 medium: MMDiT-X with an x-block self-attention layer
    unet_config = {
        "in_channels": 16, "out_channels": 16, "patch_size": 2, "depth": 2, "input_size": None,
        "adm_in_channels": 2048, "num_patches": 256, "pos_embed_max_size": 16, "qk_norm": "rms",
        "context_embedder_config": {"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 128}},
        "pos_embed_scaling_factor": None, "x_block_self_attn_layers": [0],
    }


FLUX_BLOCKS = {"hidden_size": 64, "mlp_ratio": 4.0, "num_heads": 2, "depth": 1, "depth_single_blocks": 1,
               "axes_dim": [8, 12, 12], "theta": 10000, "patch_size": 2, "qkv_bias": True, "context_in_dim": 4096,
               **harness.required_fields(comfy.ldm.flux.model.FluxParams, txt_ids_dims=[])}  # Flux.1: no text rope


class Flux(comfy.supported_models.Flux):  # Flux dev: guidance embedding
    unet_config = FLUX_BLOCKS | {"image_model": "flux", "guidance_embed": True, "in_channels": 16,
                                 "out_channels": 16, "vec_in_dim": 768}


class FluxRope4(Flux):  # Flux.1's blocks with Flux.2's rope: 4 axes, text tokens numbered on the 4th (v0.33 on)
    unet_config = Flux.unet_config | {"axes_dim": [8, 8, 8, 8],
                                      **harness.required_fields(comfy.ldm.flux.model.FluxParams, txt_ids_dims=[3])}


class Chroma(comfy.supported_models.Chroma):
    unet_config = FLUX_BLOCKS | {"image_model": "chroma", "in_channels": 64, "out_channels": 64, "in_dim": 64,
                                 "out_dim": 64, "hidden_dim": 32, "n_layers": 1,
                                 **harness.required_fields(comfy.ldm.chroma.model.ChromaParams, vec_in_dim=None)}


class ChromaRadiance(comfy.supported_models.ChromaRadiance):  # Chroma's blocks on pixels in 16×16 patches
    unet_config = Chroma.unet_config | {
        "image_model": "chroma_radiance", "in_channels": 3, "out_channels": 3, "patch_size": 16,
        "nerf_hidden_size": 16, "nerf_mlp_ratio": 2, "nerf_depth": 1, "nerf_max_freqs": 4, "nerf_tile_size": 0,
        "nerf_final_head_type": "linear", "nerf_embedder_dtype": None,
        **harness.required_fields(comfy.ldm.chroma_radiance.model.ChromaRadianceParams, use_x0=False,
                                  use_sequential_txt_ids=False)}


WAN_BLOCKS = {"image_model": "wan2.1", "dim": 64, "out_dim": 16, "num_heads": 2, "ffn_dim": 128, "num_layers": 2,
              "patch_size": (1, 2, 2), "freq_dim": 256, "window_size": (-1, -1), "qk_norm": True,
              "cross_attn_norm": True, "eps": 1e-6, "text_dim": 4096}


class Wan21T2V(comfy.supported_models.WAN21_T2V):
    unet_config = WAN_BLOCKS | {"model_type": "t2v", "in_dim": 16}


class Wan21I2V(comfy.supported_models.WAN21_I2V):  # 36 input channels: latent, mask (4), image latent
    unet_config = WAN_BLOCKS | {"model_type": "i2v", "in_dim": 36}


class QwenImage(comfy.supported_models.QwenImage):
    unet_config = {"image_model": "qwen_image", "in_channels": 64, "out_channels": 16, "num_layers": 2,
                   "attention_head_dim": 32, "num_attention_heads": 2, "joint_attention_dim": 3584,
                   "axes_dims_rope": (8, 12, 12)}


class Lumina2(comfy.supported_models.Lumina2):
    unet_config = {"image_model": "lumina2", "patch_size": 2, "in_channels": 16, "dim": 64, "cap_feat_dim": 2304,
                   "n_layers": 2, "n_refiner_layers": 1, "n_heads": 2, "n_kv_heads": 1, "multiple_of": 16,
                   "qk_norm": True, "axes_dims": [8, 12, 12], "axes_lens": [300, 512, 512]}


class AuraFlow(comfy.supported_models.AuraFlow):
    unet_config = {"cond_seq_dim": 2048, "max_seq": 256, "n_double_layers": 1, "n_layers": 2, "in_channels": 4,
                   "out_channels": 4, "patch_size": 2, "dim": 64, "n_heads": 2, "global_conddim": 64}


class HiDream(comfy.supported_models.HiDream):  # block 0 reads Llama layer 0, the rest the last layer (1)
    unet_config = {"image_model": "hidream", "attention_head_dim": 32, "axes_dims_rope": [16, 8, 8],
                   "caption_channels": [4096, 4096], "max_resolution": [128, 128], "in_channels": 16,
                   "llama_layers": [0, 1], "num_attention_heads": 2, "num_routed_experts": 2,
                   "num_activated_experts": 2, "num_layers": 1, "num_single_layers": 1, "out_channels": 16,
                   "patch_size": 2, "text_emb_dim": 2048}


class HunyuanVideo(comfy.supported_models.HunyuanVideo):
    unet_config = FLUX_BLOCKS | {"image_model": "hunyuan_video", "in_channels": 16, "out_channels": 16,
                                 "patch_size": [1, 2, 2], "vec_in_dim": 768, "theta": 256, "byt5": False,
                                 "meanflow": False, "guidance_embed": True}


class LTXV(comfy.supported_models.LTXV):  # LTX-Video: self-attention, then cross-attention to the T5 context
    unet_config = {"image_model": "ltxv", "in_channels": 128, "cross_attention_dim": 64, "attention_head_dim": 32,
                   "num_attention_heads": 2, "caption_channels": 4096, "num_layers": 2}


@dataclass(frozen=True)
class Family:
    """One model family: its tiny config, and its tokenizer and text encoder with the encoders' model names."""

    config: type[comfy.supported_models_base.BASE]
    tokenizer: type
    text_encoder: type
    encoders: tuple[str, ...]
    tokenizer_data: Callable[[], dict] = dict
    text_configs: dict = field(default_factory=dict)  # per-encoder changes to TEXT_ENCODERS' tiny configs


FAMILIES = {
    "sd1": Family(SD1, comfy.sd1_clip.SD1Tokenizer, comfy.sd1_clip.SD1ClipModel, ("clip_l",)),
    "sd2": Family(SD2, comfy.text_encoders.sd2_clip.SD2Tokenizer, comfy.text_encoders.sd2_clip.SD2ClipModel,
                  ("clip_h",)),
    "sdxl": Family(SDXL, comfy.sdxl_clip.SDXLTokenizer, comfy.sdxl_clip.SDXLClipModel, ("clip_l", "clip_g")),
    "sd3": Family(SD3, comfy.text_encoders.sd3_clip.SD3Tokenizer,
                  comfy.text_encoders.sd3_clip.sd3_clip(clip_l=True, clip_g=True, t5=True),
                  ("clip_l", "clip_g", "t5xxl")),
    "flux": Family(Flux, comfy.text_encoders.flux.FluxTokenizer, comfy.text_encoders.flux.flux_clip(),
                   ("clip_l", "t5xxl")),
    "chroma": Family(Chroma, comfy.text_encoders.pixart_t5.PixArtTokenizer, comfy.text_encoders.pixart_t5.pixart_te(),
                     ("t5xxl",)),
    "chroma_radiance": Family(ChromaRadiance, comfy.text_encoders.pixart_t5.PixArtTokenizer,
                              comfy.text_encoders.pixart_t5.pixart_te(), ("t5xxl",)),
    "wan21": Family(Wan21T2V, comfy.text_encoders.wan.WanT5Tokenizer, comfy.text_encoders.wan.te(), ("umt5xxl",),
                    umt5_tokenizer_data),
    "wan21_i2v": Family(Wan21I2V, comfy.text_encoders.wan.WanT5Tokenizer, comfy.text_encoders.wan.te(),
                        ("umt5xxl",), umt5_tokenizer_data),
    "qwen_image": Family(QwenImage, comfy.text_encoders.qwen_image.QwenImageTokenizer,
                         comfy.text_encoders.qwen_image.te(), ("qwen25_7b",)),
    "lumina2": Family(Lumina2, comfy.text_encoders.lumina2.LuminaTokenizer, comfy.text_encoders.lumina2.te(),
                      ("gemma2_2b",), gemma_tokenizer_data),
    "auraflow": Family(AuraFlow, comfy.text_encoders.aura_t5.AuraT5Tokenizer, comfy.text_encoders.aura_t5.AuraT5Model,
                       ("pile_t5xl",)),
    "hidream": Family(HiDream, HiDreamTokenizer, comfy.text_encoders.hidream.hidream_clip(),
                      ("clip_l", "clip_g", "t5xxl", "llama"),
                      text_configs={"llama": {"num_hidden_layers": 2}}),  # conditioning_llama3: 2 layers (real 32)
    "hunyuan_video": Family(HunyuanVideo, HunyuanVideoTokenizer, comfy.text_encoders.hunyuan_video.hunyuan_video_clip(),
                            ("clip_l", "llama")),
    "ltxv": Family(LTXV, comfy.text_encoders.lt.LTXVT5Tokenizer, comfy.text_encoders.lt.ltxv_te(), ("t5xxl",)),
}

UNBUILDABLE: dict[str, str] = {}  # family → why this ComfyUI cannot build it
if hasattr(comfy.supported_models, "Flux2") and hasattr(comfy.text_encoders.flux, "KleinTokenizer"):
    class Flux2Klein(comfy.supported_models.Flux2):  # Flux.2's blocks (patch 1, 4 rope axes), Klein's Qwen3 context
        unet_config = FLUX_BLOCKS | {
            "image_model": "flux2", "in_channels": 128, "out_channels": 128, "patch_size": 1, "vec_in_dim": None,
            "context_in_dim": 3 * 2560, "axes_dim": [8, 8, 8, 8], "theta": 2000, "mlp_ratio": 3.0, "qkv_bias": False,
            "guidance_embed": False, "txt_ids_dims": [3], "global_modulation": True, "mlp_silu_act": True,
            "ops_bias": False, "default_ref_method": "index", "ref_index_scale": 10.0}

    FAMILIES["flux2_klein"] = Family(Flux2Klein, comfy.text_encoders.flux.KleinTokenizer,
                                     comfy.text_encoders.flux.klein_te(), ("qwen3_4b",))

    class Flux2Dev(Flux2Klein):  # Flux.2 dev: the same blocks, Mistral 3's three layers as the context
        unet_config = Flux2Klein.unet_config | {"context_in_dim": 3 * 5120}

    FAMILIES["flux2_dev"] = Family(Flux2Dev, comfy.text_encoders.flux.Flux2Tokenizer,
                                   comfy.text_encoders.flux.flux2_te(), ("mistral3_24b",), tekken_tokenizer_data)
else:
    UNBUILDABLE["flux2_klein"] = UNBUILDABLE["flux2_dev"] = "this ComfyUI has no Flux.2 (comfy.supported_models.Flux2)"
if hasattr(comfy.supported_models, "Kandinsky5"):
    import comfy.text_encoders.kandinsky5

    class Kandinsky5(comfy.supported_models.Kandinsky5):  # text blocks refine the context; visual blocks cross-attend
        unet_config = {"image_model": "kandinsky5", "in_visual_dim": 16, "out_visual_dim": 16, "in_text_dim": 3584,
                       "in_text_dim2": 768, "time_dim": 32, "model_dim": 64, "ff_dim": 128, "visual_embed_dim": 132,
                       "patch_size": (1, 2, 2), "num_text_blocks": 1, "num_visual_blocks": 2, "axes_dims": (8, 12, 12)}

    FAMILIES["kandinsky5"] = Family(Kandinsky5, comfy.text_encoders.kandinsky5.Kandinsky5Tokenizer,
                                    comfy.text_encoders.kandinsky5.te(), ("qwen25_7b", "clip_l"))
else:
    UNBUILDABLE["kandinsky5"] = "this ComfyUI has no Kandinsky 5 (comfy.supported_models.Kandinsky5; v0.3.64 had none)"
if hasattr(comfy.supported_models, "ZImage"):
    import comfy.text_encoders.z_image

    class ZImage(comfy.supported_models.ZImage):  # Lumina 2's NextDiT with Qwen3 captions, padded to 32 tokens
        unet_config = Lumina2.unet_config | {  # its modulation takes 256 wide: the least width
            "dim": 256, "axes_dims": [32, 48, 48], "cap_feat_dim": 2560, "z_image_modulation": True,
            "time_scale": 1000.0, "pad_tokens_multiple": 32}

    FAMILIES["z_image"] = Family(ZImage, comfy.text_encoders.z_image.ZImageTokenizer, comfy.text_encoders.z_image.te(),
                                 ("qwen3_4b",))
else:
    UNBUILDABLE["z_image"] = "this ComfyUI has no Z-Image (comfy.supported_models.ZImage; v0.3.64 had none)"
if hasattr(comfy.supported_models, "Krea2"):
    import comfy.text_encoders.krea2

    class Krea2(comfy.supported_models.Krea2):  # one stream [text, image]; text fused from 12 Qwen3-VL layers
        unet_config = {"image_model": "krea2", "features": 128, "tdim": 32, "txtdim": 64, "heads": 4, "kvheads": 2,
                       "multiplier": 2, "layers": 1, "patch": 2, "channels": 16, "txtlayers": 12, "txtheads": 2,
                       "txtkvheads": 2}

    FAMILIES["krea2"] = Family(Krea2, comfy.text_encoders.krea2.Krea2Tokenizer, comfy.text_encoders.krea2.te(),
                               ("qwen3vl_4b",))
else:
    UNBUILDABLE["krea2"] = "this ComfyUI has no Krea 2 (comfy.supported_models.Krea2; v0.3.64 had none)"
if hasattr(comfy.supported_models, "LTXAV"):
    import comfy.sd1_clip
    import comfy.text_encoders.llama

    class Gemma3StandIn(comfy.sd1_clip.SDClipModel):
        """Gemma 3 read at every layer, as LTX-2's text encoder reads it (Gemma3_12BModel), built from ComfyUI's
        text-only Gemma 3 class: the 12B class allocates a 400 M-parameter vision tower whatever its config."""

        def __init__(self, device="cpu", layer="all", layer_idx=None, dtype=None, attention_mask=True,
                     model_options={}):  # noqa: B006 (ComfyUI's signature)
            super().__init__(device=device, layer=layer, layer_idx=layer_idx, textmodel_json_config={}, dtype=dtype,
                             special_tokens={"start": 2, "pad": 0}, layer_norm_hidden_state=False,
                             model_class=comfy.text_encoders.llama.Gemma3_4B, enable_attention_masks=attention_mask,
                             return_attention_masks=attention_mask,
                             model_options={**model_options, "model_name": "gemma3_12b"})

    class LTXAV(comfy.supported_models.LTXAV):  # LTX-2: video and audio blocks, each cross-attending to its text
        unet_config = {"image_model": "ltxav", "in_channels": 128, "audio_in_channels": 128,
                       "cross_attention_dim": 64, "audio_cross_attention_dim": 32, "attention_head_dim": 32,
                       "num_attention_heads": 2, "audio_attention_head_dim": 16, "audio_num_attention_heads": 2,
                       "caption_channels": 64, "num_layers": 2, "connector_attention_head_dim": 32,
                       "connector_num_attention_heads": 2, "connector_num_layers": 1}

    FAMILIES["ltxav"] = Family(LTXAV, comfy.text_encoders.lt.LTXAVGemmaTokenizer, comfy.text_encoders.lt.ltxav_te(
        video_projection_dim=64, text_encoder_model=Gemma3StandIn), ("gemma3_12b",), gemma_tokenizer_data)
else:
    UNBUILDABLE["ltxav"] = "this ComfyUI has no LTX-2 (comfy.supported_models.LTXAV; v0.3.64 had none)"
REFUSED_MODELS: dict[str, type] = {}  # model-only tiny configs of models the pack refuses (no CLIP: refused first)
if hasattr(comfy.supported_models, "WAN21_Vace"):
    class Wan21Vace(comfy.supported_models.WAN21_Vace):  # VaceWanModel: WanModel plus VACE reference blocks
        unet_config = WAN_BLOCKS | {"model_type": "vace", "in_dim": 16, "vace_layers": 1, "vace_in_dim": 96}

    REFUSED_MODELS["wan21_vace"] = Wan21Vace
if hasattr(comfy.supported_models, "HunyuanVideo15"):
    import comfy.ldm.hunyuan_video.model
    import comfy.text_encoders.hunyuan_image

    class HunyuanVideo15(comfy.supported_models.HunyuanVideo15):  # HunyuanVideo's blocks, Qwen2.5-VL context
        unet_config = {"image_model": "hunyuan_video", **harness.required_fields(
            comfy.ldm.hunyuan_video.model.HunyuanVideoParams, **HunyuanVideo.unet_config | {
                "use_cond_type_embedding": True, "vision_in_dim": 32, "byt5": True, "meanflow_sum": False,
                "in_channels": 65, "out_channels": 32, "vec_in_dim": None, "guidance_embed": False,
                "context_in_dim": 3584, "patch_size": [1, 1, 1]})}

    FAMILIES["hunyuan_video15"] = Family(  # no ByT5 glyph encoder (its model's glyph mapper reads tests' own tokens)
        HunyuanVideo15, comfy.text_encoders.hunyuan_video.HunyuanVideo15Tokenizer,
        comfy.text_encoders.hunyuan_image.te(byt5=False), ("qwen25_7b",),
        text_configs={"qwen25_7b": {"num_hidden_layers": 4}})  # it reads layer −3
else:
    UNBUILDABLE["hunyuan_video15"] = "this ComfyUI has no HunyuanVideo 1.5 (v0.3.64 had none)"

if "txt_ids_dims" in FluxRope4.unet_config:
    FAMILIES["flux_rope4"] = Family(FluxRope4, comfy.text_encoders.flux.FluxTokenizer,
                                    comfy.text_encoders.flux.flux_clip(), ("clip_l", "t5xxl"))
else:
    UNBUILDABLE["flux_rope4"] = "this ComfyUI's Flux has no text rope axes (FluxParams.txt_ids_dims, v0.33 on)"


def model(family: str, seed: int = 0, dtype: torch.dtype = torch.float32,
          manual_cast: torch.dtype | None = None) -> comfy.model_patcher.ModelPatcher:
    """The family's tiny diffusion model as a MODEL: weights stored in ``dtype``, computed in ``manual_cast`` (None:
    in ``dtype``), set as ComfyUI's loader does (``set_inference_dtype``).

    Built afresh on every call (at most 26 ms), so that, as with a loader's output, the weights die with the last
    patcher: a model kept alive by a cache outlives the clones ComfyUI loaded it by, and ComfyUI then runs a full
    garbage collection at every later load ("Potential memory leak detected"), 0.4 s each in this suite."""
    return build(FAMILIES[family].config, seed, dtype, manual_cast)


def build(config_class: type, seed: int = 0, dtype: torch.dtype = torch.float32,
          manual_cast: torch.dtype | None = None) -> comfy.model_patcher.ModelPatcher:
    """A tiny diffusion model of ``config_class`` (a config above, or a model-only one of REFUSED_MODELS)."""
    config = config_class(config_class.unet_config)
    config.set_inference_dtype(dtype, manual_cast)
    base = config.get_model({}, device=CPU)
    tiny.fill_(base.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(base, load_device=CPU, offload_device=CPU)


@functools.cache
def _clip(family: str, seed: int) -> comfy.sd.CLIP:
    spec = FAMILIES[family]
    options = {f"{name}_model_config": TEXT_ENCODERS[name][0] | spec.text_configs.get(name, {})
               for name in spec.encoders}
    target = comfy.supported_models_base.ClipTarget(spec.tokenizer, spec.text_encoder)
    built = comfy.sd.CLIP(target, tokenizer_data=spec.tokenizer_data(), model_options=options)
    encoder = built.cond_stage_model
    tiny.fill_(encoder, seed, skip=("qwen25_7b.transformer.visual", "qwen3vl_4b.transformer.visual"))
    for name in spec.encoders:
        if TEXT_ENCODERS[name][1] is not None:  # None: the encoder's own projection sets the width (LTX-2)
            getattr(encoder, name).register_forward_hook(widen(TEXT_ENCODERS[name][1]))
    return built


def clip(family: str, seed: int = 1) -> comfy.sd.CLIP:
    """The family's tokenizer and tiny text encoder as a CLIP (a clone of one cached build)."""
    return _clip(family, seed).clone()


def encode(clip: comfy.sd.CLIP, text: str) -> list:
    """CLIPTextEncode's output for ``text``."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


CONTEXT_TOKENS = {  # the tokenizer outputs whose tokens fill the CONDITIONING's token axis, in order
    "sd1": ("l",), "sd2": ("h",), "sdxl": ("l",), "sd3": ("l", "t5xxl"), "flux": ("t5xxl",),
    "flux_rope4": ("t5xxl",), "chroma": ("t5xxl",), "chroma_radiance": ("t5xxl",),
    "wan21": ("umt5xxl",), "wan21_i2v": ("umt5xxl",), "qwen_image": ("qwen25_7b",), "lumina2": ("gemma2_2b",),
    "auraflow": ("pile_t5xl",), "hidream": ("t5xxl",), "hunyuan_video": ("llama",), "flux2_klein": ("qwen3_4b",),
    "ltxv": ("t5xxl",), "ltxav": ("gemma3_12b",), "kandinsky5": ("qwen25_7b",), "krea2": ("qwen3vl_4b",),
    "z_image": ("qwen3_4b",), "hunyuan_video15": ("qwen25_7b",), "flux2_dev": ("mistral3_24b",),
}


def template_cut(family: str, ids: list[int]) -> slice:
    """The part of a templated LLM prompt its text encoder keeps (comfy/text_encoders/qwen_image.py and
    hunyuan_video.py): Qwen-Image and Kandinsky 5 from the user text to the end, HunyuanVideo the user text and its
    <|eot_id|>."""
    if family in ("qwen_image", "kandinsky5", "krea2", "hunyuan_video15"):  # after the 2nd <|im_start|>, user, \n
        start = [i for i, t in enumerate(ids) if t == 151644][1]
        return slice(start + 3 if ids[start + 1:start + 3] == [872, 198] else start, None)
    if family == "hunyuan_video":  # after <|start_header_id|> user <|end_header_id|> "\n\n", to <|eot_id|>
        header = next(i for i in range(len(ids) - 2) if ids[i:i + 3] == [128006, 882, 128007])
        start = header + 2 + (2 if ids[header + 3] == 271 else 0)
        return slice(start, ids.index(128009, start) + 1)
    return slice(None)


LEFT_PADDED = {"flux2_dev": 512}  # the model pads the context on the left to this many tokens (Flux2.extra_conds)
MISTRAL_PAD = 11


def context_tokens(family: str, tokens: dict) -> list[int]:
    """The token id at each position of the CONDITIONING's token axis (``cond[0][0].shape[1]`` of them), from
    ``clip.tokenize(text)``: CLIP chunks one after another, SD3's CLIP-L (CLIP-G on the same positions) then T5,
    LLM prompts cut as their encoder cuts them; the context as the model reads it where the model pads it on the left
    (LEFT_PADDED, with Mistral's pad id). HiDream's Llama tokens (conditioning_llama3) are all 128 of
    ``tokens["llama"]``."""
    ids = [t for key in CONTEXT_TOKENS[family] for chunk in tokens[key] for t, *_ in chunk]
    ids = ids[template_cut(family, ids)]
    return [MISTRAL_PAD] * (LEFT_PADDED.get(family, 0) - len(ids)) + ids


def latent_shape(family: str, batch: int = 1) -> tuple[int, ...]:
    """(B, C, H, W), or (B, C, T=1, H, W) for the video latent formats (Wan, Qwen-Image, HunyuanVideo); H = W =
    PIXELS over the family's downscale (8; 16 for Flux.2; 1 for Chroma Radiance, whose latent is the picture)."""
    latent_format = FAMILIES[family].config.latent_format
    frames = (1,) if latent_format.latent_dimensions == 3 else ()
    size = PIXELS // DOWNSCALE.get(family, 8)
    return (batch, latent_format.latent_channels, *frames, size, size)


def latent(family: str, batch: int = 1) -> torch.Tensor:
    """An empty latent of the family's shape."""
    return torch.zeros(latent_shape(family, batch))


def vae(family: str, seed: int = 2) -> comfy.sd.VAE:
    """A small random AutoencoderKL for the family's latents (3-D convolutions, 4× in time, for video latents)."""
    channels, *frames, _, _ = latent_shape(family)[1:]
    video = {"conv3d": True, "time_compress": 4} if frames else {}
    return tiny.seeded_vae(tiny.VAE_CONFIG | {"z_channels": channels} | video, seed)


VISION_TOKENS, BYT5_WIDTH = 5, 1472  # HunyuanVideo 1.5's tiny CLIP-vision output; ByT5-small's width


def with_start_image(positive: list, negative: list, seed: int = 5) -> tuple[list, list]:
    """HunyuanVideo 1.5 image to video: both conditionings through HunyuanVideo15ImageToVideo with a seeded
    CLIP-vision output of VISION_TOKENS tokens (as CLIPVisionEncode gives one; no start image, so no VAE)."""
    from comfy_helpers import call_node

    import comfy.clip_vision

    output = comfy.clip_vision.Output()
    output["last_hidden_state"] = torch.randn(1, VISION_TOKENS, 32, generator=torch.Generator().manual_seed(seed))
    positive, negative, _ = call_node("HunyuanVideo15ImageToVideo", positive=positive, negative=negative, vae=None,
                                      width=64, height=64, length=1, batch_size=1, clip_vision_output=output)
    return positive, negative


def with_quoted_text(conditioning: list, tokens: int, seed: int) -> list:
    """``conditioning`` as HunyuanVideo 1.5's text encoder gives a prompt that quotes text: with seeded ByT5 tokens
    (the tiny CLIP has no ByT5 encoder; the model's glyph mapper reads them)."""
    import node_helpers

    glyphs = torch.randn(1, tokens, BYT5_WIDTH, generator=torch.Generator().manual_seed(seed))
    return node_helpers.conditioning_set_values(conditioning, {"conditioning_byt5small": glyphs})


def image_and_quotes(positive: list, negative: list) -> tuple[list, list]:
    """HunyuanVideo 1.5 image to video, both prompts quoting text: VISION_TOKENS CLIP-vision tokens and 7 ByT5 tokens
    before the positive's own, VISION_TOKENS and 4 before the negative's."""
    positive, negative = with_start_image(positive, negative)
    return with_quoted_text(positive, 7, seed=1), with_quoted_text(negative, 4, seed=2)


def stream_tokens(conditioning: list, run: list | None = None) -> int:
    """The tokens HunyuanVideo 1.5 puts into its text stream for a conditioning: the CLIP-vision tokens of the run
    (``run``: the prompt's conditioning; a negative takes the run's image), its own ByT5 tokens, its Qwen2.5-VL
    tokens."""
    vision, glyphs = (run or conditioning)[0][1].get("clip_vision_output"), conditioning[0][1].get(
        "conditioning_byt5small")
    return (conditioning[0][0].shape[1] + (0 if glyphs is None else glyphs.shape[1])
            + (0 if vision is None else vision.last_hidden_state.shape[1]))
