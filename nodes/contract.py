"""What the guidance patch and the attention capture tell each other, and the guider keys they share.

- ``GUIDANCE`` (model_options): the patch's ``NegativeGuidance``; the capture reads it to say why a negative
  was never evaluated.
- ``EFFECTS`` (transformer_options): the capture's recorder; the patch's batch function hands it |w⁻·(n − u)| of
  each negative term at each step's own σ_i (``add_effect(step, term, effect)``).
- ``EMPTY_KEY`` and ``term_key(i)``: the guider.conds keys under which the patch adds u and the NegativeTerms.

Attention-space negatives (AttentionNegativeTerm, nodes/nag.py):
- ``NAG`` (transformer_options): the ``NagCall`` of this model call, set by the guidance batch only when some attention
  term is active at this call: the active negatives (their chain index, φᵢ(t), context), τ, α and the uuids of the
  branches NAG applies to. Absent: every NAG hook passes through, bit-identical to a model without them.
- The layout the NAG hooks give a layer while ``NAG`` is set: cross attention (UNets, Wan) sees k/v over
  [ctx⁺, ctx⁻₁ … ctx⁻ₖ] (the negatives' tokens last, in ``NagCall.negatives`` order); joint attention (Flux, Chroma,
  SD3.5, Qwen-Image) sees [txt⁺, txt⁻₁ … txt⁻ₖ, img], with T⁺ and each T⁻ᵢ in ``NagCall.layout`` (set by the family's
  first block of each forward, before any attention call).
- ``NAG_PART`` (transformer_options of the attention calls the NAG hooks make below themselves): ``POSITIVE_PART``
  for the layer's own attention in the model's usual layout, every row; or the chain index i of an attention-space
  negative for its part: k/v = ctx⁻ᵢ (cross) or [txt⁻ᵢ, img] (joint), only the NAG rows, ``uuids`` = theirs. The
  merged joint form (guidance/merged_attention.py) makes instead ``TextStream(None)`` and ``TextStream(i)`` (the
  prompt's and each negative's text queries over [txt, img]) and one ``IMAGE_SINK`` call (the image queries over the
  image keys and the sink), no maps read from either; and, only while a capture records the block, ``TextKeys(None)``
  and ``TextKeys(i)`` (the image queries over one text's keys alone: the maps a capture below the hooks reads).
  ``nodes/nag.py`` ``cross_parts`` / ``joint_parts`` read a call's texts for the capture, above or below the hooks.
- ``ATTENTION_EFFECT``: the effect-map name of the attention-space negatives, |Z − Z⁺| averaged over channels and
  layers, upsampled to the latent, one per step (they share one normalisation, so one map for all of them).
"""

from __future__ import annotations

from dataclasses import dataclass

KEY = "x-negative-guidance"
GUIDANCE = f"{KEY}.guidance"
EFFECTS = f"{KEY}.effects"
EMPTY_KEY = f"{KEY}.empty"
NAG = f"{KEY}.nag"
NAG_PART = f"{KEY}.nag_part"
POSITIVE_PART = "positive"
IMAGE_SINK = "image and sink"
ATTENTION_EFFECT = "attention"


@dataclass(frozen=True)
class TextKeys:
    """The NAG_PART of a joint layer's image queries over one text's keys alone: ``term``, the attention-space
    negative's chain index, or None for the prompt's text."""

    term: int | None


@dataclass(frozen=True)
class TextStream:
    """The NAG_PART of one text's queries over [txt, img] in the merged joint form, its text stream: ``term`` as in
    TextKeys. No maps are read from it."""

    term: int | None


def term_key(index: int) -> str:
    """The key of the index-th NegativeTerm, in the planner and in guider.conds."""
    return f"{KEY}.term{index}"


def term_name(key: str) -> str:
    """A planner key as the user knows it: 'negative' or 'term0'."""
    return key.removeprefix(f"{KEY}.")


def attention_key(index: int) -> str:
    """The planner key of the index-th AttentionNegativeTerm."""
    return f"{KEY}.attention{index}"
