"""Attention-space negatives at sampling time: what the guidance batch hands the family hooks for one model call, and
the two ways a layer guides its attention with them (cross attention, joint attention).

Normalized Attention Guidance (Chen et al. 2025, https://arxiv.org/abs/2505.21179), in every cross- or joint-attention
layer, with several negatives summed before one normalisation (guidance/nag.py):

    Z̃ = Z⁺ + Σᵢ φᵢ(t)·(Z⁺ − Z⁻ᵢ);   N = ‖Z̃‖₁/‖Z⁺‖₁ per token;   Ẑ = Z̃·min(N, τ)/N;   Z = α·Ẑ + (1 − α)·Z⁺

Where it applies: on the rows of every conditional branch with a positive scale in this call (the positive prompt and
every NegativeTerm with a negative weight, i.e. one that pulls toward its prompt), never on u's rows (the empty
prompt) nor on a negative CFG branch, whose attention stays exactly ComfyUI's. This is where the peers apply it:
core NAGuidance and KJNodes' NAG nodes guide the conditional pass only.

Z⁻ᵢ is formed from this layer's own queries over the i-th negative's keys and values, projected by this layer's own
weights (the negative's context rides beside the positive's, see the family modules):
- cross attention (UNets, Wan, LTXV, Kandinsky 5): Z⁻ᵢ = Attn(Q, K⁻ᵢ, V⁻ᵢ), one more attention per layer;
- joint attention (Flux, Flux.2 Klein, Chroma, SD3.5, Qwen-Image, Krea 2): the call holds [txt⁺, txt⁻₁ … txt⁻ₖ, img].
  Z⁻ᵢ is the image queries' attention over [txt⁻ᵢ, img] (the negative's text keys/values beside the same image
  keys/values), and the negative's own text stream is updated by its queries over [txt⁻ᵢ, img], as if it were the
  prompt. NAG then acts on the image rows. When every row of the call is guided (cfg 1), Z⁺ and every Z⁻ᵢ are merged
  from one image attention (guidance/merged_attention.py): the image half is computed once, and each negative adds its
  text stream and an fp32 attention over its text keys alone. Otherwise (u or a CFG negative in the same batch, whose
  rows must stay exactly ComfyUI's; SageAttention, whose kernels do not take the sink's channels, and any attention
  override set before the pack's, such as ModelAttentionBackend's; fp16, whose range would flush the shares) Z⁻ᵢ is a
  second attention over [txt⁻ᵢ, img].

Every attention is computed by the attention chain below (an earlier override, or ComfyUI's own function). No host
sync happens here: the rows come from the call's uuids, on the host.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from ..attention.maps import heads_first
from ..guidance import AttentionTerm, Window, normalized_attention_guidance, shared_normalisation
from ..guidance.merged_attention import merged, text_attention, with_sink
from .contract import NAG, attention_key

Attend = Callable[..., torch.Tensor]  # (q, k, v, options[, mask]) → out; mask: additive, over these keys
ALL = "all"  # an AttentionNegativeTerm's stream: every text stream of the model
STREAMS = (ALL, "video", "audio")  # LTX-2 reads its prompt in a video and an audio cross-attention


def stray_stream(negatives, streams) -> str | None:
    """The first stream an attention-space negative (``negatives``: each with a ``stream``) picks that is not among
    ``streams``, where it would never act; None when each acts (ALL acts on every stream)."""
    return next((n.stream for n in negatives if n.stream != ALL and n.stream not in streams), None)


@dataclass(frozen=True)
class AttentionNegative:
    """One AttentionNegativeTerm: a conditioning pushed away in attention space with φ = ``scale``, τ and α."""

    conditioning: list
    scale: float
    tau: float
    alpha: float
    window: Window
    schedule: str
    stream: str = ALL  # which of the model's text streams it guides (LTX-2: "video" or "audio"; ALL: every one)

    def attention_term(self, index: int) -> AttentionTerm:
        return AttentionTerm(attention_key(index), self.scale, self.tau, self.alpha, self.window, self.schedule)

    @property
    def context(self) -> torch.Tensor:
        """The negative's cross-attention context, (1, T⁻, width), as CLIPTextEncode gave it."""
        return self.conditioning[0][0]


@dataclass
class Negative:
    """One attention-space negative active in this call: its place in the chain, φᵢ(t), its context, its τ and α,
    and the stream it guides."""

    index: int
    phi: float
    context: torch.Tensor | tuple[torch.Tensor, ...]  # a family's several (HunyuanVideo 1.5: Qwen2.5-VL, ByT5)
    tau: float
    alpha: float
    stream: str = ALL

    @property
    def tokens(self) -> int:
        return self.context.shape[1]


@dataclass
class Rows:
    """Which chunks of a layer's batch NAG applies to: ``flags[j]`` for chunk j of ``size`` rows."""

    flags: tuple[bool, ...]
    size: int
    uuids: list

    @property
    def none(self) -> bool:
        return not any(self.flags)

    @property
    def every(self) -> bool:
        return all(self.flags)

    def pick(self, x: torch.Tensor) -> torch.Tensor:
        """The NAG rows of x (batch first)."""
        if self.every:
            return x
        return torch.cat([x[j * self.size:(j + 1) * self.size] for j, on in enumerate(self.flags) if on])

    def merge(self, base: torch.Tensor, guided: torch.Tensor) -> torch.Tensor:
        """``base`` with its NAG rows replaced by ``guided`` (which holds only those rows)."""
        if self.every:
            return guided
        parts, taken = [], 0
        for j, on in enumerate(self.flags):
            if on:
                parts.append(guided[taken:taken + self.size])
                taken += self.size
            else:
                parts.append(base[j * self.size:(j + 1) * self.size])
        return torch.cat(parts)


@dataclass
class JointLayout:
    """Where the texts sit in one forward of a DiT: T⁺ (the positive's text tokens) and T⁻ᵢ, laid out [txt⁺, txt⁻₁ …
    txt⁻ₖ, img] (a cross-attention context: [ctx⁺, ctx⁻₁ … ctx⁻ₖ]; Krea 2's one stream: [txt⁺, img, txt⁻₁ …]), and
    the negatives' texts as the blocks take them. Set once per forward, before any attention call, by the family's
    first block (Krea 2: its post_input patch)."""

    text: int
    negatives: tuple[int, ...]
    latent: tuple[int, ...]  # the shape of the latent this forward runs on (an area prompt's crop, or the whole)
    texts: list[torch.Tensor] = field(default_factory=list)  # each negative's embedded text, (1 or B, T⁻ᵢ, width)
    unworded: tuple[int, ...] = ()  # each text's tokens before its words, the prompt's first (HunyuanVideo 1.5's)
    pe: tuple | None = None  # (the model's positional embedding of this forward, it extended by the negatives' rows)

    @property
    def extra(self) -> int:
        return sum(self.negatives)

    @property
    def image_start(self) -> int:
        return self.text + self.extra

    def spans(self, nag: NagCall) -> list[tuple[int | None, slice]]:
        """Each text's tokens: (None, the prompt's), then (its chain index, each negative's)."""
        return text_spans(self.text, self.negatives, [n.index for n in nag.negatives])

    def word_spans(self, nag: NagCall) -> list[tuple[int | None, slice]]:
        """``spans`` less each text's tokens before its words (``unworded``: HunyuanVideo 1.5's CLIP-vision and ByT5
        tokens), which belong to no word: the capture maps each word's share of its text's own tokens."""
        skips = self.unworded or (0,) * (1 + len(self.negatives))
        return [(term, slice(keys.start + skip, keys.stop))
                for (term, keys), skip in zip(self.spans(nag), skips, strict=True)]


@dataclass
class NagCall:
    """The attention-space negatives of one model call (transformer_options[NAG]), made by the guidance batch.

    ``uuids``: the cond uuids NAG applies to; ``effect_uuids``: those of the positive prompt, whose |Z − Z⁺| is summed
    into ``effect`` (latent-sized, one per call) when a capture records this step.
    """

    negatives: list[Negative]
    uuids: frozenset
    latent_shape: tuple[int, ...]
    effect_uuids: frozenset = frozenset()
    record_effect: bool = False
    layout: JointLayout | None = None
    effect: EffectSum = field(default_factory=lambda: EffectSum())
    run_cache: dict = field(default_factory=dict)  # per sampling run: the contexts on the model's device and dtype

    def __deepcopy__(self, memo):
        return self

    @property
    def phis(self) -> list[float]:
        return [n.phi for n in self.negatives]

    @functools.cached_property
    def normalisation(self) -> tuple[float, float]:
        """(τ, α) shared by this call's negatives: their φᵢ(t)-weighted means."""
        return shared_normalisation(self.negatives, self.phis)

    def members(self, stream: str) -> list[int]:
        """The positions of the negatives that guide one of the model's text streams (LTX-2's "video" or "audio";
        ALL: the one stream of every other model, which every negative guides)."""
        return [i for i, n in enumerate(self.negatives) if ALL in (stream, n.stream) or n.stream == stream]

    def of_stream(self, stream: str) -> NagCall | None:
        """This call's negatives that guide ``stream``, sharing its effect map and layout; None if none does."""
        members = self.members(stream)
        if len(members) == len(self.negatives):
            return self
        return replace(self, negatives=[self.negatives[i] for i in members]) if members else None

    @property
    def tokens(self) -> tuple[int, ...]:
        return tuple(n.tokens for n in self.negatives)

    def contexts(self, like: torch.Tensor) -> list:
        """The negatives' contexts on ``like``'s device and dtype, each moved once per sampling run (a family's tuple
        of contexts, HunyuanVideo 1.5's, each of them)."""
        found = []
        for n in self.negatives:
            key = (n.index, like.device, like.dtype)
            if key not in self.run_cache:
                context = n.context if isinstance(n.context, tuple) else (n.context,)
                moved = tuple(c.to(like.device, like.dtype) for c in context)
                self.run_cache[key] = moved if isinstance(n.context, tuple) else moved[0]
            found.append(self.run_cache[key])
        return found

    def spans(self, text: int) -> list[tuple[int | None, slice]]:
        """Each text's tokens in a cross-attention context [ctx⁺ (``text`` tokens), ctx⁻₁ … ctx⁻ₖ]."""
        return text_spans(text, self.tokens, [n.index for n in self.negatives])

    def applies(self, uuids: Sequence) -> bool:
        """Whether NAG applies to some chunk of a forward with these uuids. A forward with none (u or the CFG negative
        batched apart) gets no negatives at all: exactly ComfyUI's computation."""
        return any(u in self.uuids for u in uuids)

    def rows(self, uuids: Sequence, batch: int) -> Rows:
        return Rows(tuple(u in self.uuids for u in uuids), batch // len(uuids),
                    [u for u in uuids if u in self.uuids])

    def combine(self, z_pos: torch.Tensor, z_negs: list[torch.Tensor], rows: Rows, uuids: Sequence,
                grid: Sequence[int] | None) -> torch.Tensor:
        """NAG on the rows ``rows`` picked (z_pos: those rows of Z⁺); sums |Z − Z⁺| of the positive's rows into the
        effect when this step is recorded (``grid``: the image tokens' grid; the first prod(grid) rows of L)."""
        z = normalized_attention_guidance(z_pos, z_negs, self.phis, *self.normalisation)
        if self.record_effect and grid is not None:
            self.add_effect(z, z_pos, [u for u in uuids if u in self.uuids], rows.size, tuple(grid))
        return z

    def add_effect(self, z: torch.Tensor, z_pos: torch.Tensor, uuids: list, size: int, grid: tuple[int, ...]):
        """|Z − Z⁺| averaged over channels, upsampled to the latent: summed over layers, read as a mean."""
        dims = tuple(self.latent_shape[2:])
        for j, u in enumerate(uuids):
            if u not in self.effect_uuids:
                continue
            rows = slice(j * size, (j + 1) * size)
            diff = (z[rows, :math.prod(grid)].float() - z_pos[rows, :math.prod(grid)].float()).abs().mean(dim=-1)
            spatial = dims[-len(grid):]
            self.effect.add(F.interpolate(diff.view(size, 1, *grid), size=spatial, mode="nearest").view(size, *dims))


@dataclass
class EffectSum:
    """|Z − Z⁺| of a model call, summed over the layers that add to it (a stream's negatives share their call's)."""

    total: torch.Tensor | None = None
    layers: int = 0

    def add(self, change: torch.Tensor) -> None:
        self.total = change if self.total is None else self.total + change
        self.layers += 1

    def mean(self) -> torch.Tensor | None:
        return None if self.total is None else self.total / self.layers


def active(options: dict) -> NagCall | None:
    """The NagCall of this forward (transformer_options), or None when no attention-space negative is active or none
    applies to its rows (u or the CFG negative batched apart: exactly ComfyUI's computation)."""
    nag = options.get(NAG)
    return nag if nag is not None and nag.applies(options["uuids"]) else None


def part_options(options: dict, rows: Rows | None = None) -> dict:
    """The options of a negative's attention call on some chunks of the batch: those chunks' ``uuids`` and
    ``cond_or_uncond``, so that a hook below that splits q's rows by them (an IP-Adapter) labels the rows it is
    handed. Without ``rows`` (every row), the layer's own options."""
    if rows is None:
        return options
    marked = {**options, "uuids": rows.uuids}
    if "cond_or_uncond" in options:
        marked["cond_or_uncond"] = [c for c, on in zip(options["cond_or_uncond"], rows.flags, strict=True) if on]
    return marked


def text_spans(text: int, tokens: Sequence[int], indices: Sequence[int]) -> list[tuple[int | None, slice]]:
    """Where each text's tokens sit in a call laid out [txt⁺ (``text`` tokens), txt⁻₁ … txt⁻ₖ]: (None, the
    prompt's), then (its chain index, each negative's)."""
    found, start = [(None, slice(0, text))], text
    for index, length in zip(indices, tokens, strict=True):
        found.append((index, slice(start, start + length)))
        start += length
    return found


def guide_cross(attend: Attend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, options: dict, nag: NagCall,
                grid: Sequence[int] | None, mask: torch.Tensor | None = None, heads_split: bool = False
                ) -> torch.Tensor:
    """Cross attention whose k/v hold [ctx⁺, ctx⁻₁ … ctx⁻ₖ] along the tokens (B, L, C), or (B, heads, L, d) with
    ``heads_split``: Z⁺ over ctx⁺ for every row, Z⁻ᵢ over ctx⁻ᵢ for the NAG rows, combined there. Returns (B, N, C)
    like the layer's own attention. ``mask``: the call's additive key mask over all those tokens (LTXV's text mask),
    cut to each text's keys."""
    axis = 2 if heads_split else 1
    text = k.shape[axis] - sum(nag.tokens)
    rows = nag.rows(options["uuids"], q.shape[0])

    def keys_of(x: torch.Tensor, keys: slice) -> torch.Tensor:
        return x.narrow(axis, keys.start, keys.stop - keys.start)

    def masked(keys: slice, picked: bool) -> tuple:  # the mask argument of one text's attention, if the call has one
        if mask is None:
            return ()
        part = mask[..., keys]
        return (rows.pick(part) if picked and part.shape[0] == q.shape[0] else part,)

    prompt = slice(0, text)
    z_pos = attend(q, keys_of(k, prompt), keys_of(v, prompt), options, *masked(prompt, False))
    if rows.none:
        return z_pos
    q_nag, negative_options = rows.pick(q), part_options(options, rows)
    z_negs = [attend(q_nag, rows.pick(keys_of(k, keys)), rows.pick(keys_of(v, keys)), negative_options,
                     *masked(keys, True)) for _, keys in nag.spans(text)[1:]]
    return rows.merge(z_pos, nag.combine(rows.pick(z_pos), z_negs, rows, options["uuids"], grid))


def merges(func, dtype: torch.dtype) -> bool:
    """Whether a joint layer's negatives can share its image attention (guidance/merged_attention.py): SageAttention's
    kernels take head dims 64, 96 and 128 only (ComfyUI would fall back to PyTorch attention, with an error, at every
    call), and fp16's range (6e-8) would flush the sink's shares to 0 where bf16 and fp32 keep them."""
    return getattr(func, "__name__", "") != "attention_sage" and dtype in (torch.bfloat16, torch.float32)


def guide_joint(attend: Attend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, options: dict, nag: NagCall,
                heads: int, heads_split: bool, grid: Sequence[int] | None, merge: bool) -> torch.Tensor:
    """Joint attention over [txt⁺, txt⁻₁ … txt⁻ₖ, img] (q/k/v (B, L, C), or (B, heads, L, d) with ``heads_split``),
    guided on the NAG rows. Returns (B, L, C) in the call's layout (the negatives' text rows are 0 on rows NAG does
    not apply to). ``merge``: whether the negatives can share the image attention (``merges``)."""
    rows = nag.rows(options["uuids"], q.shape[0])
    if rows.every and merge:
        return guide_joint_merged(attend, q, k, v, options, nag, rows, heads, heads_split, grid)
    return guide_joint_apart(attend, q, k, v, options, nag, rows, heads_split, grid)


def guide_joint_apart(attend: Attend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, options: dict, nag: NagCall,
                      rows: Rows, heads_split: bool, grid: Sequence[int] | None) -> torch.Tensor:
    """(a) [txt⁺, img] over [txt⁺, img] for every row, exactly the attention without the negatives; for the NAG rows,
    (b)+(c) [txt⁻ᵢ, img] over [txt⁻ᵢ, img]: the negative's own text update and Z⁻ᵢ, its image rows."""
    layout, axis = nag.layout, 2 if heads_split else 1
    image_start = layout.image_start
    image = q.shape[axis] - image_start

    def positive(x):
        return torch.cat([x.narrow(axis, 0, layout.text), x.narrow(axis, image_start, image)], dim=axis)

    z_pos = attend(positive(q), positive(k), positive(v), options)  # (B, T⁺ + N, C)
    z_pos_image = z_pos[:, layout.text:]
    texts, z_negs = [], []
    if not rows.none:
        for _, keys in layout.spans(nag)[1:]:
            tokens = keys.stop - keys.start

            def part(x, start=keys.start, tokens=tokens):
                x = rows.pick(x)
                return torch.cat([x.narrow(axis, start, tokens), x.narrow(axis, image_start, image)], dim=axis)

            z = attend(part(q), part(k), part(v), part_options(options, rows))
            texts.append(rows.merge(z_pos.new_zeros(z_pos.shape[0], tokens, z_pos.shape[2]), z[:, :tokens]))
            z_negs.append(z[:, tokens:])
        guided = nag.combine(rows.pick(z_pos_image), z_negs, rows, options["uuids"], grid)
        z_pos_image = rows.merge(z_pos_image, guided)
    else:
        texts = [z_pos.new_zeros(z_pos.shape[0], tokens, z_pos.shape[2]) for tokens in layout.negatives]
    return torch.cat([z_pos[:, :layout.text], *texts, z_pos_image], dim=1)


def guide_joint_merged(attend: Attend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, options: dict,
                       nag: NagCall, rows: Rows, heads: int, heads_split: bool,
                       grid: Sequence[int] | None) -> torch.Tensor:
    """Every row guided, with one image attention (guidance/merged_attention.py): each text's queries over [txt, img]
    (its text stream, the prompt's and each negative's alike) and the image queries over the image keys and the sink,
    through the chain; the image queries over each text's keys alone (A, L) beside it; then Z⁺, Z⁻ᵢ by the merge and
    NAG on the image rows."""
    layout, axis = nag.layout, 2 if heads_split else 1
    image_start = layout.image_start
    image = q.shape[axis] - image_start
    v = v if heads_split else v.reshape(*v.shape[:2], -1)  # SD3 hands v as (B, L, heads, d)

    def span(x, start, length):
        return x.narrow(axis, start, length)

    def text(start, tokens):  # the text's stream, and (A, L) of the image queries over its keys alone
        keys, values = (torch.cat([span(x, start, tokens), span(x, image_start, image)], dim=axis) for x in (k, v))
        stream = attend(span(q, start, tokens), keys, values, options)
        alone = [span(q, image_start, image), span(k, start, tokens), span(v, start, tokens)]
        return stream, text_attention(*(heads_first(x, heads, heads_split) for x in alone))

    streams, texts = zip(*(text(keys.start, keys.stop - keys.start) for _, keys in layout.spans(nag)), strict=True)
    per_head = (lambda x: x) if heads_split else (lambda x: x.unflatten(-1, (heads, -1)))  # (…, L, heads, d)
    flip = (lambda x: x.transpose(1, 2)) if heads_split else (lambda x: x)  # (B, N, heads) ↔ q's layout
    *sinked, kernel_logit = with_sink(*(per_head(span(x, image_start, image)) for x in (q, k, v)),
                                      flip(texts[0][1]), token_dim=axis)
    image_out = attend(*(x if heads_split else x.flatten(2) for x in sinked), options)
    z_pos, *z_negs = (z.flatten(2) for z in merged(image_out, heads, flip(kernel_logit), list(texts)))
    guided = nag.combine(z_pos, z_negs, rows, options["uuids"], grid)
    return torch.cat([*streams, guided.to(v.dtype)], dim=1)
