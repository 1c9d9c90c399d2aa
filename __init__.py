"""comfyui-negative-guidance: negative prompts as first-class, measurable guidance terms.

ComfyUI loads this package and calls ``comfy_entrypoint`` (V3 node API). The import of ``nodes`` is deferred
so that the pure ``guidance`` and ``attention`` packages import without ComfyUI.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import NegativeGuidanceExtension

    return NegativeGuidanceExtension()
