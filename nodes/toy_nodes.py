"""The toy concept model's loader: a trained, offline model to try every workflow of the pack on any CPU."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..toy.data import SIZE
from ..toy.model import load


class ToyConceptModelLoader(io.ComfyNode):
    """MODEL, CLIP and VAE of the toy concept model shipped with the pack (32×32 pixel space, v-prediction)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ToyConceptModelLoader",
            display_name="Load Toy Concept Model",
            category="loaders",
            description=f"A small text-to-image model trained by the pack on {SIZE}×{SIZE} pictures of one "
                        "creature-like shape: a circle, square or triangle, red, green or blue, plain or striped "
                        "(adjective-like attributes), that may wear a hat, have eyes and stand on legs (noun-like "
                        "parts). Prompts like 'a striped red circle with eyes' or 'blue, square, hat'; negatives "
                        "like 'hat', 'legs', 'striped' or 'red'. Use an empty latent of "
                        f"{SIZE * 8}×{SIZE * 8} (EmptyLatentImage) or {SIZE}×{SIZE} "
                        "(EmptyChromaRadianceLatentImage): it samples in pixel space at 1/8 of that size.",
            inputs=[],
            outputs=[
                io.Model.Output(tooltip="The toy diffusion model (it samples pixels): use it with any ComfyUI "
                                        "sampler, guider or patch, and the pack's guidance and attention nodes."),
                io.Clip.Output(tooltip="Its text encoder (ComfyUI's SD1 CLIP tokenizer): for CLIPTextEncode, "
                                       "AttentionCapture and the guidance nodes' clip. Only the toy world's words "
                                       "mean something to it."),
                io.Vae.Output(tooltip=f"ComfyUI's pixel-space VAE (nothing learned): VAEDecode maps the "
                                      f"latent's [-1, 1] to the {SIZE}×{SIZE} picture's [0, 1]."),
            ],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(*load())
