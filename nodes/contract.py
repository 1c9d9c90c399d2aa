"""Every private key the pack puts in ComfyUI's model options, and what rides under it.

model_options:
- ``GUIDANCE``: the guidance patch's ``NegativeGuidance``; the capture reads it to say why a negative was never
  evaluated. ``RUN_CONTEXT``: the patch's ``RunContext`` of the run being sampled, read by its batch function.
- ``EMPTY_KEY`` and ``term_key(i)``: the guider.conds keys under which the patch adds u and the NegativeTerms.

transformer_options (the attention site, nodes/site.py):
- ``SITE``: the model's attention ``Site``: the family's hooks and who joined them (the capture's recorder, to which
  the guidance batch hands each step's effect maps; the negatives).
- ``LATENT``: the shape of the latent this forward of the model runs on (the sampled latent, or its crop for an area
  prompt; of latents packed into one, LTX-2's video), set by the site's APPLY_MODEL wrapper. ``TIMESTEPS``: with
  attention-space negatives, this forward's timesteps as the model converts them from σ (one per batch row), for a
  family that embeds a negative with them (HunyuanVideo 1.5's token refiner). ``TEXT_PREFIX``: the tokens this
  forward's model puts before the prompt's in its text stream, from the family's ``text_prefix(diffusion_model,
  conds)`` (HunyuanVideo 1.5: its (CLIP-vision, ByT5) token counts, of an image-to-video run and of quoted text).
- ``CALL``: the capture's ``CallRecord`` of this model call, set only at the steps it records.
- ``NAG``: the ``NagCall`` of this model call (nodes/nag.py), set by the guidance batch only when some
  attention-space negative is active: the active negatives (their chain index, φᵢ(t), context, τ, α and stream) and
  the uuids of the branches NAG applies to; the negatives of one text stream share one normalisation.
- ``BLOCK``: inside one DiT block, the site's ``BlockRun`` (nodes/families/joint.py), from its block replace to its
  attention override.
- ``ATTENTION_EFFECT``: the effect-map name of the attention-space negatives, |Z − Z⁺| averaged over channels and
  layers, upsampled to the latent, one per step for all of them, from the calls whose queries are the image's (an
  LTX-2 negative of the audio alone adds none).
"""

from __future__ import annotations

KEY = "x-negative-guidance"
GUIDANCE = f"{KEY}.guidance"
RUN_CONTEXT = f"{KEY}.run"
EMPTY_KEY = f"{KEY}.empty"
SITE = f"{KEY}.site"
LATENT = f"{KEY}.latent"
TIMESTEPS = f"{KEY}.timesteps"
TEXT_PREFIX = f"{KEY}.text_prefix"
CALL = f"{KEY}.call"
NAG = f"{KEY}.nag"
BLOCK = f"{KEY}.block"
ATTENTION_EFFECT = "attention"


def term_key(index: int) -> str:
    """The key of the index-th NegativeTerm, in the planner and in guider.conds."""
    return f"{KEY}.term{index}"


def term_name(key: str) -> str:
    """A planner key as the user knows it: 'negative' or 'term0'."""
    return key.removeprefix(f"{KEY}.")


def attention_key(index: int) -> str:
    """The planner key of the index-th AttentionNegativeTerm."""
    return f"{KEY}.attention{index}"
