"""The ComfyUI adapters. Each node module is imported, and its nodes registered, only when the ComfyUI surface it
needs binds (compat.py): a ComfyUI that lacks a hook loses those nodes with one log line, not a crash mid-run."""

import importlib

from typing_extensions import override

from comfy_api.v0_0_2 import ComfyExtension, io

from . import compat

MODULES = {  # module: (what its nodes need, its node classes)
    "guidance_nodes": (compat.SAMPLING, ("NegativeGuidanceGuider", "NegativeGuidanceCFG", "NegativeTerm",
                                         "AttentionNegativeTerm")),
    "attention_nodes": (compat.SAMPLING + compat.CAPTURE, ("AttentionCapture", "AttentionRt")),
    "toy_nodes": (compat.TOY, ("ToyConceptModelLoader",)),
}


def usable_nodes() -> list[type[io.ComfyNode]]:
    nodes = []
    for name, (required, classes) in MODULES.items():
        if compat.usable(", ".join(classes), required):
            module = importlib.import_module(f".{name}", __package__)
            nodes += [getattr(module, cls) for cls in classes]
    return nodes


class NegativeGuidanceExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return usable_nodes()
