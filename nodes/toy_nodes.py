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
            outputs=[io.Model.Output(), io.Clip.Output(), io.Vae.Output()],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(*load())
