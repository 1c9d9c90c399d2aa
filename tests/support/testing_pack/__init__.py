"""A test-only custom node pack (never shipped): loads the tiny SD1-shaped models into real graphs."""

import tiny
from typing_extensions import override

from comfy_api.v0_0_2 import ComfyExtension, io


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


class TestingExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [NegativeGuidanceTestTinySD1]


async def comfy_entrypoint() -> TestingExtension:
    return TestingExtension()
