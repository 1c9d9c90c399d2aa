"""The declared ComfyUI surface (nodes/compat.py): it binds on the ComfyUI under test, and a ComfyUI that lacks a
symbol loses only the nodes or the model family that need it, with one log line naming the symbol."""

import json
import subprocess
import sys
import textwrap

import harness
from comfy_helpers import PACK_NODES, pack_module

LATER = {"kandinsky5": ("comfy.ldm.kandinsky5.model", "Kandinsky5"),  # families whose model v0.3.64 lacks
         "krea2": ("comfy.ldm.krea2.model", "SingleStreamDiT"),
         "nextdit": ("comfy.ldm.lumina.model", "pad_zimage"),  # Z-Image's NextDiT, which numbers its layers
         "ltxav": ("comfy.ldm.lightricks.av_model", "LTXAVModel"),
         "hunyuan_video15": ("comfy.model_base", "HunyuanVideo15")}


def families_of_this_comfyui() -> list[str]:
    """The families whose model this ComfyUI has: all of compat.FAMILIES, less those that came after v0.3.64."""
    compat = pack_module("nodes.compat")
    return [name for name in compat.FAMILIES if name not in LATER or compat.resolve(*LATER[name]) is not None]


def test_every_declared_symbol_binds_on_this_comfyui(comfy):
    compat = pack_module("nodes.compat")
    present = families_of_this_comfyui()
    surfaces = [compat.SAMPLING, compat.CAPTURE, compat.NEGATIVES, compat.TOY, *map(compat.FAMILIES.get, present)]
    assert [compat.problems(s) for s in surfaces] == [[]] * len(surfaces)
    assert present == [name for name, required in compat.FAMILIES.items() if compat.has_model(required)]
    import nodes

    assert all(name in nodes.NODE_CLASS_MAPPINGS for name in PACK_NODES)


def boot_without(tmp_path, hide: str) -> tuple[list[str], str, str]:
    """Boot ComfyUI in a fresh process after ``hide`` (Python run first) removes a symbol; returns the pack's
    registered nodes, the families the capture reads, and the log."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = {[str(harness.PACK_ROOT / "tests" / "support"), str(harness.PACK_ROOT / "scripts")]!r}
        import harness
        sys.path.insert(0, str(harness.find_comfyui()))
        from comfy.cli_args import args
        args.cpu = True
        {hide}
        import comfy_helpers
        comfy_helpers.boot(__import__("pathlib").Path({str(tmp_path)!r}))
        import nodes
        families = harness.module("nodes.families")
        print(json.dumps([[k for k in {PACK_NODES!r} if k in nodes.NODE_CLASS_MAPPINGS],
                          [f.__name__.rsplit(".", 1)[-1] for f in families.FAMILIES]]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    registered, families = json.loads(result.stdout.strip().splitlines()[-1])
    return registered, families, result.stderr


def test_a_missing_hook_unregisters_only_the_nodes_that_need_it(tmp_path):
    registered, _, log = boot_without(
        tmp_path, "import comfy.patcher_extension; del comfy.patcher_extension.WrappersMP.CALC_COND_BATCH")
    assert registered == ["NegativeGuidanceGuider", "NegativeGuidanceCFG", "NegativeTerm", "AttentionNegativeTerm",
                          "ToyConceptModelLoader"]
    lines = [line for line in log.splitlines() if "negative-guidance:" in line]
    version = pack_module("nodes.compat").comfyui_version()
    assert len(lines) == 1 and lines[0].endswith(
        f"negative-guidance: AttentionCapture, AttentionRt not registered: ComfyUI {version}: "
        "comfy.patcher_extension.WrappersMP.CALC_COND_BATCH is missing")


def test_a_changed_signature_turns_off_only_that_family(tmp_path):
    _, families, log = boot_without(
        tmp_path, "import comfy.ldm.flux.math as m; m.attention = lambda q, k, v, pe, mask=None: None")
    flux_attention = ("flux", "hunyuan_video15")  # HunyuanVideo 1.5's blocks attend through Flux's attention too
    assert families == [f for f in families_of_this_comfyui() if f not in flux_attention]
    version = pack_module("nodes.compat").comfyui_version()
    assert (f"the attention capture of the flux family not registered: ComfyUI {version}: "
            "comfy.ldm.flux.math.attention no longer takes transformer_options") in log


def test_a_key_comfyui_no_longer_sets_turns_off_only_that_family(tmp_path):
    """SpatialTransformer.forward replaced by a pass-through whose source no longer names 'activations_shape' (the
    grid the UNet family reads in every attn2 call): the capture refuses UNets at load, the other families stay."""
    hidden = tmp_path / "hidden_key.py"
    hidden.write_text("def forward(self, *args, **kwargs):\n    return ORIGINAL(self, *args, **kwargs)\n",
                      encoding="utf-8")
    _, families, log = boot_without(
        tmp_path, f"import sys, comfy.ldm.modules.attention as attention; sys.path.insert(0, {str(tmp_path)!r}); "
                  "import hidden_key; hidden_key.ORIGINAL = attention.SpatialTransformer.forward; "
                  "attention.SpatialTransformer.forward = hidden_key.forward")
    assert families == [f for f in families_of_this_comfyui() if f != "unet"]
    version = pack_module("nodes.compat").comfyui_version()
    assert (f"the attention capture of the unet family not registered: ComfyUI {version}: "
            "comfy.ldm.modules.attention.SpatialTransformer.forward no longer sets 'activations_shape'") in log
