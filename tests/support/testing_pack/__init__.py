"""A test-only custom node pack (never shipped): loads the tiny seeded models into real graphs."""

import tiny
import tiny_families
import torch
from typing_extensions import override

from comfy_api.v0_0_2 import ComfyExtension, io

DTYPES = {  # name: (weight dtype, manual cast dtype: None computes in the weight dtype)
    "fp32": (torch.float32, None),
    "bf16": (torch.bfloat16, None),
    "fp16": (torch.float16, None),
    "bf16 weights, fp32 compute": (torch.bfloat16, torch.float32),
}


class NegativeGuidanceTestTinySD1(io.ComfyNode):
    """MODEL, CLIP and VAE of the tiny seeded SD1-shaped models (tests only)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NegativeGuidanceTestTinySD1",
            category="_for_testing",
            inputs=[io.Int.Input("seed", default=0, tooltip="Seed of the random weights.")],
            outputs=[io.Model.Output(), io.Clip.Output(), io.Vae.Output()],
        )

    @classmethod
    def execute(cls, seed) -> io.NodeOutput:
        return io.NodeOutput(tiny.tiny_model(seed), tiny.tiny_clip(seed + 1), tiny.tiny_vae(seed + 2))


class NegativeGuidanceTestTinyFamily(io.ComfyNode):
    """MODEL, CLIP and VAE of one family's tiny seeded models (tests only)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NegativeGuidanceTestTinyFamily",
            category="_for_testing",
            inputs=[
                io.Combo.Input("family", options=list(tiny_families.FAMILIES), default="sd1",
                               tooltip="The model family: its real ComfyUI config, tokenizer and text encoder "
                                       "classes at tiny widths (tests/support/tiny_families.py)."),
                io.Int.Input("seed", default=0, min=0,
                             tooltip="Seed of the random weights: the model's; the CLIP's is seed + 1, the VAE's "
                                     "seed + 2."),
                io.Combo.Input("dtype", options=list(DTYPES), default="fp32",
                               tooltip="The diffusion model's weight and compute dtypes, set with ComfyUI's "
                                       "set_inference_dtype (the last option manual-casts bf16 weights to fp32, "
                                       "as ComfyUI does on a CPU). The CLIP and VAE stay in fp32."),
            ],
            outputs=[
                io.Model.Output(tooltip="The tiny diffusion model with the family's model sampling and latent "
                                        "format."),
                io.Clip.Output(tooltip="The family's real tokenizer and tiny text encoder: CLIPTextEncode gives "
                                       "the family's token layout, widths and extra keys."),
                io.Vae.Output(tooltip="A small random AutoencoderKL for the family's latent channels and "
                                      "dimensions (3-D convolutions for video latents)."),
            ],
        )

    @classmethod
    def execute(cls, family, seed, dtype) -> io.NodeOutput:
        weights, compute = DTYPES[dtype]
        return io.NodeOutput(tiny_families.model(family, seed, weights, compute), tiny_families.clip(family, seed + 1),
                             tiny_families.vae(family, seed + 2))


class NegativeGuidanceTestTinyAudioLatent(io.ComfyNode):
    """LTX-2's empty audio latent without an audio VAE (tests only): LTXVEmptyLatentAudio's layout, (B, 8, L, 16),
    at a few latent frames."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="NegativeGuidanceTestTinyAudioLatent",
            category="_for_testing",
            inputs=[io.Int.Input("batch_size", default=1, min=1, tooltip="Rows of the latent."),
                    io.Int.Input("length", default=5, min=1, optional=True, tooltip="Audio latent frames.")],
            outputs=[io.Latent.Output(tooltip="An empty LTX-2 audio latent.")],
        )

    @classmethod
    def execute(cls, batch_size, length=5) -> io.NodeOutput:
        return io.NodeOutput({"samples": torch.zeros(batch_size, 8, length, 16), "type": "audio"})


class TestingExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [NegativeGuidanceTestTinySD1, NegativeGuidanceTestTinyFamily, NegativeGuidanceTestTinyAudioLatent]


async def comfy_entrypoint() -> TestingExtension:
    return TestingExtension()
