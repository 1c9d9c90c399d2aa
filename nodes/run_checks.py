"""Everything that would make a run with the guidance patch silently wrong, refused before its first step."""

from __future__ import annotations

import math
import re

import comfy.samplers

from .contract import EMPTY_KEY

# post-CFG hooks that evaluate the sampler's own negative again and mix it with ū, by the file that defines them
# (ComfyUI loads comfy_extras/nodes_sag.py under its path, so the module's last part names it)
REEVALUATE_UNCOND = {"nodes_sag": "SelfAttentionGuidance"}
# attention patches that take the CFG negative's rows of the batch as their negative, by the same file name
NEGATIVE_ROWS = {"nodes_nag": "NAGuidance"}


def context_width(conditioning: list) -> int:
    """The feature width of a CONDITIONING's cross-attention context (768 SD1, 1024 SD2, 2048 SDXL, 4096 T5)."""
    return conditioning[0][0].shape[-1]


def check_width(node_id: str, input_name: str, conditioning: list, width: int, source: str) -> None:
    """Refuse a conditioning encoded for another model family, before sampling starts."""
    got = context_width(conditioning)
    if got != width:
        raise ValueError(
            f"{node_id}: input '{input_name}' has context width {got}, but {source} has {width}: it was encoded "
            "by the CLIP of another model family. Encode it with the same CLIP as the positive prompt."
        )


def module_file(fn) -> str:
    """The last part of the module that defines ``fn``: 'nodes_sag' for comfy_extras/nodes_sag.py."""
    return re.split(r"[./\\]", getattr(fn, "__module__", None) or "")[-1]


def check_run(guidance, guider, batch) -> None:
    """The guider hands the patch a positive and a negative through ComfyUI's own sampling_function, nothing
    replaced the batch function since, cfg is a number, and no hook mixes ū with the sampler's own negative."""
    node, name = guidance.node_id, type(guider).__name__
    if type(guider).predict_noise is not comfy.samplers.CFGGuider.predict_noise:
        raise ValueError(f"{node}: the patched model went to {name}, which computes its own guidance and would "
                         "bypass this patch. Use KSampler, CFGGuider or NegativeGuidanceGuider.")
    if not guider.conds.get("positive") or not guider.conds.get("negative"):
        raise ValueError(f"{node}: the patched model went to {name}, which gives it no negative prompt, so n would "
                         "be taken as 0. Use KSampler, CFGGuider or NegativeGuidanceGuider.")
    if guider.model_options.get("sampler_calc_cond_batch_function") is not batch:
        raise ValueError(f"{node}: a node applied after it replaced sampler_calc_cond_batch_function. "
                         f"Apply {node} last in the model chain.")
    if not math.isfinite(guider.cfg):
        raise ValueError(f"{node}: the sampler's cfg is {guider.cfg}; give a finite number")
    for hook in guider.model_options.get("sampler_post_cfg_function", []):
        other = REEVALUATE_UNCOND.get(module_file(hook))
        if other and not guidance.is_stock_negative(guider.cfg):
            raise ValueError(f"{node}: {other} re-evaluates the sampler's negative prompt and mixes it with this "
                             "patch's effective uncond, which is not that negative here (independent mode, a "
                             "window, a schedule or extra terms). Use mode standard with an always-on negative "
                             f"and no terms, or leave {other} out.")
    patches = guider.model_options.get("transformer_options", {}).get("patches", {})
    for hook in (hook for hooks in patches.values() for hook in hooks):
        if (other := NEGATIVE_ROWS.get(module_file(hook))) is not None:
            raise ValueError(f"{node}: the model also carries {other} (Normalized Attention Guidance), which reads its "
                             "negative from the CFG negative's rows of each model call; this patch evaluates that "
                             "negative only where its plan needs it (never at cfg 1 in standard mode), so "
                             f"{other} would silently skip those steps. Remove {other} and give its negative to an "
                             "AttentionNegativeTerm (scale = nag_scale − 1, tau = nag_tau, alpha = nag_alpha), "
                             "which also takes a window and adds no batch row.")
    width = guider.conds["positive"][0]["cross_attn"].shape[-1]
    for key, conditioning in guidance.extra_conditionings().items():
        check_width(node, "empty" if key == EMPTY_KEY else "terms", conditioning, width, "the positive prompt")
    for term in guidance.attention:
        check_width(node, "terms", term.conditioning, width, "the positive prompt")
