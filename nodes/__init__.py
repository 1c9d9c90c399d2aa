"""The ComfyUI adapters: the only package of the pack that imports ComfyUI."""

from typing_extensions import override

from comfy_api.v0_0_2 import ComfyExtension, io

from .attention_nodes import AttentionCapture, AttentionRt
from .guidance_nodes import NegativeGuidanceCFG, NegativeGuidanceGuider, NegativeTerm
from .toy_nodes import ToyConceptModelLoader

NODES = [NegativeGuidanceGuider, NegativeGuidanceCFG, NegativeTerm, AttentionCapture, AttentionRt,
         ToyConceptModelLoader]


class NegativeGuidanceExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
