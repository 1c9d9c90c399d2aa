"""One attention site per model: the hooks a family installs once, which the attention capture and the
attention-space negatives join.

A family's ``install(patched)`` sets its hooks on a clone (a UNet's attn2 replaces and its attn2_patch; a DiT's block
replaces and its attention override), each chained over the hook that was there before. The immutable ``Site`` that
lists the participants rides in transformer_options. A node joins it copy-on-write: it clones the model and puts a
new Site there, so the incoming model keeps its own, the hooks are set once, and AttentionCapture and
AttentionNegativeTerm may be applied in either order, with other nodes between them.

At each model call the hooks read what each participant hands that call (nodes/contract.py): the capture's
``CallRecord`` at the steps it records, and the negatives' ``NagCall`` when some attention-space negative is active.
With neither, every hook passes the call through unchanged. With both, the layer's attention is guided once and
the capture records each text's maps from the very queries and keys that guidance used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType

import comfy.patcher_extension

from .contract import KEY, LATENT, NAG, SITE, TEXT_PREFIX, TIMESTEPS


@dataclass(frozen=True)
class Site:
    """The hooks a family installed on a model chain (by key, to check at sampling), the node that installed them
    (the first to join), and who joined them: the AttentionCapture's ``recorder`` and the node that carries
    attention-space ``negatives``."""

    family: ModuleType
    hooks: dict
    installer: str
    recorder: object | None = None
    negatives: str | None = None

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model_options: clones share the site
        return self


def site_of(model_options: dict) -> Site | None:
    return model_options.get("transformer_options", {}).get(SITE)


def join(model, family: ModuleType, node: str, **participant):
    """A clone of ``model`` whose site (installed now by ``node`` if the model has none) lists ``participant`` too."""
    patched = model.clone()
    site = site_of(patched.model_options)
    if site is None:
        site = Site(family, family.install(patched), node)
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, f"{KEY}.site", forward_latent)
    options = patched.model_options.setdefault("transformer_options", {})
    patched.model_options["transformer_options"] = {**options, SITE: replace(site, **participant)}
    return patched


def forward_latent(executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
    """APPLY_MODEL wrapper: the hooks of this forward learn the shape of the latent it runs on (contract ``LATENT``):
    the sampled latent's, or the crop of an area prompt, whose image tokens are a grid of their own; of latents
    packed into one (LTX-2's video and audio), the first's. A new forward has no negatives' text layout yet (its
    first block sets one); with negatives, it learns its timesteps (contract ``TIMESTEPS``); where the family's model
    puts tokens of its own before the prompt's, their counts (contract ``TEXT_PREFIX``)."""
    packed = kwargs.get("latent_shapes")
    options = {**transformer_options, LATENT: tuple(packed[0] if packed else x.shape)}
    if (prefix := getattr(getattr(transformer_options.get(SITE), "family", None), "text_prefix", None)) is not None:
        options[TEXT_PREFIX] = prefix(executor.class_obj.diffusion_model, kwargs)
    if (nag := transformer_options.get(NAG)) is not None:
        nag.layout = None
        options[TIMESTEPS] = executor.class_obj.model_sampling.timestep(t).float()  # as _apply_model converts σ
    return executor(x, t, c_concat, c_crossattn, control, options, **kwargs)


def whole(options: dict, latent_shape: tuple[int, ...]) -> bool:
    """Whether this forward runs on the whole sampled latent of shape ``latent_shape`` (not an area's crop)."""
    return tuple(options.get(LATENT, latent_shape)[2:]) == tuple(latent_shape[2:])


NEGPIP = "ppm_negpip"  # the model_options flag ppm's CLIP NegPip sets on the model and on the CLIP it patches


def negpip_message(node: str, model_options: dict, what: str) -> str | None:
    """Why ``node`` cannot read a model (or CLIP) patched by ppm's CLIP NegPip, or None when it is not."""
    if not model_options.get(NEGPIP, False):
        return None
    return (f"{node}: {what} comes from CLIP NegPip (ppm), whose contexts interleave a key and a value embedding for "
            "every token (twice the tokens the words give), which the capture and attention-space negatives do not "
            "map. Use CLIP NegPip's negative weights without them, or remove CLIP NegPip from this chain.")


def split_message(node: str, model_patcher) -> str | None:
    """Why ``node``'s site cannot run under MultiGPU CFG Split (MultiGPU_WorkUnits, comfy/multigpu.py), or None when
    the model is not split. The split runs one step's conditionings in threads, each on its own copy of the model
    (the copies it keeps under the additional-models key 'multigpu'), while the site's hooks embed the negatives'
    texts with this copy's weights and keep one model call's state (its layout, its maps) for every thread."""
    copies = len(model_patcher.get_additional_models_with_key("multigpu"))
    if not copies:
        return None
    return (f"{node}: the model is split over {copies + 1} devices by MultiGPU CFG Split (MultiGPU_WorkUnits), which "
            "runs one step's conditionings in threads, each on its own copy of the model; the attention hooks of the "
            "capture and of attention-space negatives hold one copy's weights and one call's state, so the result "
            "would not be exact. Remove MultiGPU CFG Split for this run (NegativeTerms alone, eq. 8, split exactly).")


def wrapped_chain(hook) -> list:
    """A hook and every hook it wraps through ``__wrapped__``."""
    chain = []
    while hook is not None and len(chain) < 32:
        chain.append(hook)
        hook = getattr(hook, "__wrapped__", None)
    return chain


def lost_hooks(model_options: dict) -> list:
    """The keys of the site's hooks that the hooks in place at sampling no longer call: replaced without being
    wrapped (``__wrapped__``, as functools.wraps sets it), or shadowed by a later replace of one transformer index of
    a hooked block, which ComfyUI looks up before the block's own (an IP-Adapter's (block, id, index) keys)."""
    site = site_of(model_options)
    hooks, found = site.hooks, site.family.installed_hooks(model_options)
    lost = [key for key, hook in hooks.items() if hook not in wrapped_chain(found.get(key))]
    for key, hook in found.items():
        if key in hooks or not (isinstance(key[-1], tuple) and len(key[-1]) == 3):
            continue
        block = (*key[:-1], key[-1][:2])  # ("attn2", (block, id, index)) → ("attn2", (block, id))
        if block in hooks and hooks[block] not in wrapped_chain(hook):
            lost.append(key)
    return lost


def hook_name(fn) -> str:
    """A hook as a user can look it up: module.qualname, where a custom node's module (which ComfyUI names by its
    file path) is its pack folder's name and the rest, never the install path."""
    module = (getattr(fn, "__module__", None) or "?").replace("\\", "/").rsplit("/", 1)[-1]
    return f"{module}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def replaced_by(hook) -> str:
    """Who set the hook that replaced one of the site's: ModelAttentionBackend and SageAttention patches set the
    attention override through ``set_model_optimized_attention``, which does not chain."""
    if "set_model_optimized_attention" in getattr(hook, "__qualname__", ""):
        return "ModelAttentionBackend or a SageAttention patch (set_model_optimized_attention, which does not chain)"
    return hook_name(hook)


def check(node: str, guider, lost: str) -> None:
    """Refuse, before the first step, a run the site cannot make exact for ``node``: a hook replaced since the site
    was installed (``lost``: what would go wrong then), MultiGPU CFG Split over several devices, ppm's NegPip."""
    if (replaced := lost_message(guider.model_options)) is not None:
        raise ValueError(f"{node}: {replaced}; otherwise {lost}.")
    for refusal in (split_message(node, guider.model_patcher),
                    negpip_message(node, guider.model_options, "the model")):
        if refusal is not None:
            raise ValueError(refusal)


def family_refusal(family: ModuleType, hook: str, guider, skip: tuple[str, ...] = ()) -> str | None:
    """Why the family's ``hook`` (``capture_refusal`` or ``negatives_refusal``) refuses the guider's conditionings,
    those under ``skip`` left out; None when it has no such hook or accepts them."""
    refusal = getattr(family, hook, None)
    if refusal is None:
        return None
    entries = [entry for key, found in guider.conds.items() if key not in skip for entry in found or ()]
    return refusal(guider.model_patcher.get_model_object("diffusion_model"), entries)


def lost_message(model_options: dict) -> str | None:
    """'a node applied after … replaced the attention hook …', naming who replaced the first lost hook and the fix,
    or None."""
    lost = lost_hooks(model_options)
    if not lost:
        return None
    site = site_of(model_options)
    found = site.family.installed_hooks(model_options).get(lost[0])
    return (f"a node applied after {site.installer} replaced the attention hook {lost[0]} ({replaced_by(found)}). "
            f"Apply {site.installer} after that node in the model chain")
