"""The attention site of the DiT families (nodes/site.py): a ``dit`` block replace per block and the
``optimized_attention_override``, each chained over the hook that was there before.

The block replace starts a ``BlockRun`` (transformer_options, contract ``BLOCK``) for the block's attention calls:
where the capture reads its text call, and, with attention-space negatives active, the negatives' texts beside the
prompt's. Each negative is embedded with the model's own text embedder once per forward, at its first block. Joint
families append it to the text stream there ([txt⁺, txt⁻₁ … txt⁻ₖ]: every later block carries it through its
token-wise text weights, and the model's final cut of the image, e.g. Flux's ``img[:, txt.shape[1]:]``, falls past
it), extending the positional embedding by the negatives' own rows; cross families (Wan, LTXV, Kandinsky 5) append it
to each block's cross-attention context.

The override takes the block's attention calls in the order the block makes them (its family says which read the
text). On a text call it returns the layer's own attention or, with negatives, the guided one (nodes/nag.py), through
the earlier override or the attention function ComfyUI chose (sage and flash included; an earlier override, such as
ModelAttentionBackend's, is handed plain attentions only, never the merged form's sink channels). The capture's maps
of each text are computed beside it, in fp32, from the same q and k.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...attention.store import LayerId
from ..contract import BLOCK, CALL, LATENT
from ..nag import ALL, JointLayout, NagCall, active, guide_cross, guide_joint, merges
from ..site import whole

OVERRIDE = "optimized_attention_override"
IMAGE_STREAMS = (ALL, "video")  # the streams whose queries are the image's (LTX-2's audio has its own)


@dataclass
class Block:
    """Where the capture reads one run of one block: which of its attention calls is the text one, and where image
    queries and text keys sit in that call's q and k (``length``: the call's q sequence length, checked when no
    negative rides in the call). ``cross``: the text call is a cross attention (Wan, LTXV, Kandinsky 5); else joint,
    with ``queries.start`` text tokens before the image."""

    layer: LayerId
    call: int
    length: int
    queries: slice
    keys: slice
    cross: bool = False


# locate(kind, index, args, call, grid) → the Block of this run of the block (call: the capture's CallRecord; grid:
# the token grid of this forward's image)
Locate = Callable[[str, int, dict, object, tuple[int, ...]], Block]


def patch_grid(dims: tuple[int, ...], patch: tuple[int, ...]) -> tuple[int, ...]:
    """The token grid of latent dims cut in patches, padded up as ComfyUI's pad_to_patch_size does."""
    return tuple(math.ceil(d / p) for d, p in zip(dims, patch, strict=True))


def image_grid(latent_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The token grid of an image latent (…, H, W) in 2×2 patches: SD3, Flux, Chroma, Qwen-Image."""
    return patch_grid(latent_shape[-2:], (2, 2))


def text_then_image(kind: str, index: int, args: dict, call, grid: tuple[int, ...]) -> Block:
    """A block whose one joint attention runs over [txt, img] (SD3's joint blocks, Qwen-Image's blocks): the image
    queries are the first grid-many image tokens, the text keys the txt tokens."""
    text_tokens, image_tokens = args["txt"].shape[1], args["img"].shape[1]
    return Block(LayerId((kind, index), 0, grid), 0, text_tokens + image_tokens,
                 slice(text_tokens, text_tokens + math.prod(grid)), slice(0, text_tokens))


@dataclass(frozen=True)
class Dit:
    """What a DiT family tells its site. ``blocks``: the dit replace keys, in the order a forward runs them;
    ``locate``: where the capture reads a block; ``embed(contexts, args)``: the negatives' texts as a block's text
    stream holds them (the model's own embedder; ``args``: the first block's, for an embedder that reads the time
    embedding), once per forward; ``extend_pe(pe, nag)``: the positional embedding with the negatives' rows after the
    prompt's. ``keys``: the names of the image and the text in a block's args. ``cross``: the text is a
    cross-attention context given to every block (Wan), which ``embed`` keeps at each text's length; then
    ``calls(block, options)`` maps the block's attention calls that may read a context (given the block's
    transformer_options) to that context's name in the args, each guided where its keys are the whole extended
    context or it less the ``cut(block)`` tokens the layer cuts off its front (Wan i2v: CLIP-vision). ``streams``:
    the stream each context name carries, where a model has several (LTX-2: video and audio, ``embed`` then gives
    each negative's text per context name); a negative joins the contexts of its stream.
    ``original_block(index)``: the block as the replace's ``extra`` should hand it, where ComfyUI's is broken
    (Kandinsky 5). ``unworded(args, contexts)``: each text's tokens before its words, the prompt's first (given the
    first block's args and the negatives' contexts), where a model puts tokens of its own there (HunyuanVideo 1.5)."""

    blocks: list[tuple[str, int]]
    locate: Locate
    embed: Callable[[list, dict], list]
    extend_pe: Callable | None = None
    token_grid: Callable[[tuple[int, ...]], tuple[int, ...]] = image_grid
    keys: tuple[str, str] = ("img", "txt")
    cross: bool = False
    calls: Callable[[tuple[str, int], dict], dict[int, str]] | None = None
    cut: Callable[[tuple[str, int]], int] = lambda block: 0
    streams: dict[str, str] = field(default_factory=dict)
    original_block: Callable[[int], Callable[[dict], dict]] | None = None
    unworded: Callable[[dict, list], tuple[int, ...]] | None = None

    def image_tokens(self, args: dict) -> int:
        """The image tokens a block's args hold (LTX-2: the video's, the first of its (video, audio) pair)."""
        image = args[self.keys[0]]
        return (image[0] if isinstance(image, tuple) else image).shape[1]

    def text_calls(self, block: tuple[str, int], options: dict) -> dict[int, str]:
        """The block's attention calls that read a text, by index, each with the name of the text in its args (a
        joint block: its one attention, call 0)."""
        return {0: self.keys[1]} if self.calls is None else self.calls(block, options)


@dataclass(frozen=True)
class TextCall:
    """One text call of a block run with negatives: those it guides (a stream's, on LTX-2), for a cross family the
    lengths its keys may have (its whole context, or it less the tokens the layer cuts), and the token grid of the
    image its queries are, for the effect map (None: another stream's queries, or an area's crop)."""

    negatives: NagCall
    keys: tuple[int, ...] = ()
    grid: tuple[int, ...] | None = None


@dataclass
class BlockRun:
    """One run of one block through the site: the capture's ``block`` and ``record`` when it records this call, its
    text ``calls`` with attention-space negatives, by index, and the count of its attention calls."""

    block: Block | None
    record: object | None
    calls: dict[int, TextCall] = field(default_factory=dict)
    cross: bool = False
    seen: int = field(default=0)

    def text_call(self, index: int, k: torch.Tensor | None = None, heads_split: bool = False) -> TextCall | None:
        """The ``index``-th attention call, if it reads a text with negatives (a cross call: given its keys ``k``)."""
        found = self.calls.get(index)
        if found is not None and self.cross and k is not None and k.shape[2 if heads_split else 1] not in found.keys:
            return None
        return found


def attention_args(args: tuple, kwargs: dict):
    """q, k, heads and the heads-first flag of an optimized_attention call, as ComfyUI's DiTs make it."""
    heads = args[3] if len(args) > 3 else kwargs["heads"]
    return args[0], args[1], heads, kwargs.get("skip_reshape", False)


def unchanged(func, previous, args: tuple, kwargs: dict) -> torch.Tensor:
    """An attention call as it came: through the earlier override, or ComfyUI's own function."""
    return previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)


def attention_mask(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """The mask of an optimized_attention call (a keyword on v0.33, the fifth argument on v0.3.64)."""
    return kwargs.get("mask", args[4] if len(args) > 4 else None)


def attention_call(func, previous, args: tuple, kwargs: dict):
    """``attend(q, k, v, options[, mask])``: this attention call with its q/k/v, transformer_options (and mask)
    replaced, through the earlier override (or ComfyUI's own function)."""

    def attend(q, k, v, options, *mask):
        rest, call_kwargs = args[3:], {**kwargs, "transformer_options": options}
        if mask and len(args) > 4:
            rest = (args[3], *mask, *args[5:])
        elif mask:
            call_kwargs["mask"] = mask[0]
        if previous is not None:
            return previous(func, q, k, v, *rest, **call_kwargs)
        return func(q, k, v, *rest, **call_kwargs)

    return attend


def guide(func, previous, args: tuple, kwargs: dict, run: BlockRun, text: TextCall) -> torch.Tensor:
    """The block's text attention ``text``, guided by its negatives."""
    q, k, heads, heads_split = attention_args(args, kwargs)
    mask = attention_mask(args, kwargs)
    if (mask is not None and not run.cross) or kwargs.get("skip_output_reshape", False):
        raise RuntimeError("AttentionNegativeTerm: this model's joint text attention uses an attention mask (or a "
                           "heads-first output), which attention-space negatives do not support yet")
    attend, options = attention_call(func, previous, args, kwargs), kwargs["transformer_options"]
    if run.cross:
        return guide_cross(attend, q, k, args[2], options, text.negatives, text.grid, mask, heads_split)
    merge = previous is None and merges(func, q.dtype)  # an override below (a backend's) gets plain attentions only
    return guide_joint(attend, q, k, args[2], options, text.negatives, heads, heads_split, text.grid, merge)


def record(run: BlockRun, options: dict, q: torch.Tensor, k: torch.Tensor, heads: int, heads_split: bool,
           mask: torch.Tensor | None) -> None:
    """The capture's maps of every text of the block's text call: the prompt's, and with negatives each one's
    (``mask``: the call's additive key mask, which the maps apply as the attention did)."""
    text, axis = run.text_call(run.block.call), 2 if heads_split else 1
    block, nag = run.block, None if text is None else text.negatives
    if nag is None:
        if q.shape[axis] != block.length:
            raise RuntimeError(f"{run.record.recorder.node}: block {block.layer.name} ran attention over "
                               f"{q.shape[axis]} tokens where {block.length} were expected: this ComfyUI lays out its "
                               "attention differently from the one the capture knows (see nodes/compat.py)")
        texts = [(None, block.queries, block.keys)]
    elif block.cross:
        texts = [(term, block.queries, keys) for term, keys in nag.spans(k.shape[axis] - sum(nag.tokens))]
    else:
        start = nag.layout.image_start
        image = slice(start, start + block.queries.stop - block.queries.start)
        texts = [(term, image, keys) for term, keys in nag.layout.word_spans(nag)]
    run.record.record_texts(block.layer, options, q, k, heads, texts, heads_split, mask)


def make_override(previous):
    """The site's optimized_attention_override: a block's text call guided and recorded; every other call (and every
    call outside a BlockRun) goes to the earlier override, or ComfyUI's function, unchanged."""

    def override(func, *args, **kwargs):
        run = (kwargs.get("transformer_options") or {}).get(BLOCK)
        if run is None:
            return unchanged(func, previous, args, kwargs)
        index, run.seen = run.seen, run.seen + 1
        q, k, heads, heads_split = attention_args(args, kwargs)
        if (text := run.text_call(index, k, heads_split)) is not None:
            out = guide(func, previous, args, kwargs, run, text)
        else:
            out = unchanged(func, previous, args, kwargs)
        if run.block is not None and index == run.block.call:
            mask = attention_mask(args, kwargs) if run.block.cross else None  # a cross family's text key mask (LTXV)
            record(run, kwargs["transformer_options"], q, k, heads, heads_split, mask)
        return out

    override.__wrapped__ = previous
    return override


def text_in(text, key: str | None = None) -> torch.Tensor:
    """A negative's embedded text in the context named ``key``, where a family embeds it per context name (LTX-2's
    video and audio, of one length; None: any of them)."""
    if not isinstance(text, dict):
        return text
    return next(iter(text.values())) if key is None else text[key]


def with_texts(txt: torch.Tensor, texts: list, key: str) -> torch.Tensor:
    """``txt`` with ``texts`` appended along the tokens, each in the context named ``key``."""
    return torch.cat([txt, *(text_in(t, key).expand(txt.shape[0], -1, -1) for t in texts)], dim=1)


def with_negatives(dit: Dit, block: tuple[str, int], first: bool, args: dict, nag: NagCall,
                   latent: tuple[int, ...]) -> dict:
    """The block's args with the negatives' texts: appended to txt at the first block of a joint forward, to every
    block's context for cross attention (and a text mask the context has extended by 0s: the family cuts each
    negative to its unmasked tokens, ``negative_context``); and the positional embedding extended, once per forward
    (``latent``: the shape of the latent this forward runs on)."""
    args, text_key = dict(args), dit.keys[1]
    if nag.layout is None:  # the first block this forward runs (a cross family's first may be skipped, by SLG)
        contexts = nag.contexts(like=args[text_key])
        texts = dit.embed(contexts, args)
        nag.layout = JointLayout(args[text_key].shape[1], tuple(text_in(t).shape[1] for t in texts), latent, texts,
                                 () if dit.unworded is None else dit.unworded(args, contexts))
    if dit.cross:
        for key in dict.fromkeys(dit.text_calls(block, args["transformer_options"]).values()):
            members = nag.members(dit.streams.get(key, ALL))
            args[key] = with_texts(args[key], [nag.layout.texts[i] for i in members], key)
        if (mask := args.get("attention_mask")) is not None:
            args["attention_mask"] = torch.cat([mask, mask.new_zeros(*mask.shape[:-1], nag.layout.extra)], dim=-1)
    elif first:
        args[text_key] = with_texts(args[text_key], nag.layout.texts, text_key)
    if dit.extend_pe is not None and args.get("pe") is not None:
        if nag.layout.pe is None or nag.layout.pe[0] is not args["pe"]:  # once per forward
            nag.layout.pe = (args["pe"], dit.extend_pe(args["pe"], nag))
        args["pe"] = nag.layout.pe[1]
    return args


def make_block_replace(dit: Dit, kind: str, index: int, first: bool, previous):
    """The site's dit block replace: a BlockRun for the block's attention calls when the capture records this call
    or negatives apply to this forward; else the block as it was."""

    def replace(args, extra):
        if dit.original_block is not None:
            extra = {**extra, "original_block": dit.original_block(index)}
        options = args["transformer_options"]
        call, nag = options.get(CALL), active(options)
        if nag is not None and not (first or dit.cross) and nag.layout is None:
            nag = None  # the first block ran without them in this pass (SkipLayerGuidance skipped it): txt holds none
        if call is not None or nag is not None:
            latent = options.get(LATENT) or (call or nag).latent_shape
            grid = dit.token_grid(latent)
            run = BlockRun(None if call is None else dit.locate(kind, index, args, call, grid), call)
            if nag is not None:
                args = with_negatives(dit, (kind, index), first, args, nag, latent)
                whole_image = whole(options, nag.latent_shape) and dit.image_tokens(args) >= math.prod(grid)
                run.cross = dit.cross
                for position, key in dit.text_calls((kind, index), options).items():
                    stream = dit.streams.get(key, ALL)
                    if (negatives := nag.of_stream(stream)) is not None:
                        tokens = args[key].shape[1] if dit.cross else 0
                        effect = whole_image and stream in IMAGE_STREAMS  # the effect map: the whole image's queries
                        run.calls[position] = TextCall(negatives, (tokens, tokens - dit.cut((kind, index))),
                                                       grid if effect else None)
            args = {**args, "transformer_options": {**options, BLOCK: run}}
        return previous(args, extra) if previous is not None else extra["original_block"](args)

    replace.__wrapped__ = previous
    return replace


def install(patched, dit: Dit) -> dict:
    """The site's override and a block replace per block on ``patched``, each chained over the one before; returns
    them by key, to check at sampling."""
    options = patched.model_options.setdefault("transformer_options", {})
    replaces = options.get("patches_replace", {}).get("dit", {})
    installed = {OVERRIDE: make_override(options.get(OVERRIDE))}
    patched.model_options["transformer_options"] = {**options, OVERRIDE: installed[OVERRIDE]}
    for i, (kind, index) in enumerate(dit.blocks):
        installed[(kind, index)] = make_block_replace(dit, kind, index, i == 0, replaces.get((kind, index)))
        patched.set_model_patch_replace(installed[(kind, index)], "dit", kind, index)
    return installed


def installed_hooks(model_options: dict) -> dict:
    """The override and the dit block replaces in ``model_options``, keyed as ``install`` returns them."""
    options = model_options.get("transformer_options", {})
    return {OVERRIDE: options.get(OVERRIDE), **options.get("patches_replace", {}).get("dit", {})}


def site(dit_of: Callable[[object], Dit]):
    """A DiT family's ``layers(diffusion_model, latent_shape)`` (one layer per block, at the token grid) and its one
    installer ``install(patched)``, from ``dit_of(diffusion_model)``."""

    def layers(diffusion_model, latent_shape: tuple[int, ...]) -> list[LayerId]:
        dit = dit_of(diffusion_model)
        return [LayerId(block, 0, dit.token_grid(latent_shape)) for block in dit.blocks]

    def install_site(patched) -> dict:
        return install(patched, dit_of(patched.get_model_object("diffusion_model")))

    return layers, install_site
