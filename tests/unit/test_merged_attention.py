"""Unit tests of guidance/merged_attention.py: Z⁺ and Z⁻ of the image queries from one attention over the image keys
and the sink, against full attentions over [txt, img] written here (softmax(QKᵀ/√d)·V in fp64, Vaswani et al. 2017,
eq. 1)."""

import pytest
import torch
from pack import module

merge = module("guidance.merged_attention")
B, HEADS, N, D, T_POS, T_NEG = 2, 3, 40, 16, 7, 5


def attention(q, k, v):
    """softmax(QKᵀ/√d)·V per head in fp64, (B, heads, L, d) → (B, L, heads, d)."""
    weights = (q.double() @ k.double().transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1)
    return (weights @ v.double()).transpose(1, 2)


def kernel(q, k, v):
    """ComfyUI's attention as the layer's chain runs it: scaled dot product in the inputs' dtype, (B, L, heads·d)."""
    return torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def layer(dtype, text_heavy=0.0, seed=0):
    """Image queries, the prompt's and a negative's text keys/values, the image keys/values (heads-first)."""
    g = torch.Generator().manual_seed(seed)
    x = lambda length: torch.randn(B, HEADS, length, D, generator=g)  # noqa: E731
    q, image = x(N), (x(N), x(N))
    positive, negative = (x(T_POS), x(T_POS)), (x(T_NEG), x(T_NEG))
    if text_heavy:  # head 0: queries and the prompt's text keys share a direction: that text takes nearly all of it
        u = torch.nn.functional.normalize(torch.randn(D, generator=g), dim=0)
        q[:, 0] += 6.0 * u
        positive[0][:, 0] += text_heavy * u
    cast = lambda pair: tuple(t.to(dtype) for t in pair)  # noqa: E731
    return q.to(dtype), cast(positive), cast(negative), cast(image)


def merged(q, texts, image):
    """[Z(txt) for txt in texts], (B, N, heads, d), the way nodes/nag.py computes them."""
    halves = [merge.text_attention(q, k, v) for k, v in texts]
    *sinked, logit = merge.with_sink(q, *image, halves[0][1].transpose(1, 2), token_dim=2)
    logit = logit.transpose(1, 2)
    return merge.merged(kernel(*sinked), HEADS, logit, halves)


def full(q, texts, image):
    """[Z(txt)]: the image queries over [txt, img], fp64."""
    return [attention(q, torch.cat([k, image[0]], dim=2), torch.cat([v, image[1]], dim=2)) for k, v in texts]


@pytest.mark.parametrize("text_heavy", [0.0, 8.0])
def test_the_merge_equals_the_full_attentions_in_fp32(text_heavy):
    """Also where the prompt's text takes nearly all of a head's attention and the negative's little (head 0)."""
    q, positive, negative, image = layer(torch.float32, text_heavy)
    for found, expected in zip(merged(q, [positive, negative], image), full(q, [positive, negative], image),
                               strict=True):
        torch.testing.assert_close(found.double(), expected, rtol=1e-5, atol=1e-6)
    if text_heavy:
        weights = (q.double() @ torch.cat([positive[0], image[0]], dim=2).double().transpose(-1, -2) * D ** -0.5)
        assert weights.softmax(dim=-1)[:, 0, :, :T_POS].sum(dim=-1).min() > 0.99


def test_a_negative_equal_to_the_prompt_gives_exactly_the_prompts_attention():
    q, positive, _, image = layer(torch.float32)
    z_pos, z_neg = merged(q, [positive, positive], image)
    assert torch.equal(z_pos, z_neg)


@pytest.mark.parametrize("text_heavy", [0.0, 8.0])
def test_in_bf16_the_merge_is_as_close_as_the_full_attentions(text_heavy):
    """bf16 inputs, attention in bf16: the worst error of Z⁺ − Z⁻ against fp64, relative to max |Z⁺ − Z⁻|, is below
    2% and below 2× that of the two full bf16 attentions."""
    q, positive, negative, image = layer(torch.bfloat16, text_heavy)
    exact = full(q, [positive, negative], image)
    exact = exact[0] - exact[1]
    z = merged(q, [positive, negative], image)
    apart = [kernel(q, torch.cat([k, image[0]], dim=2), torch.cat([v, image[1]], dim=2)).view(B, N, HEADS, D)
             for k, v in (positive, negative)]
    error = lambda difference: (difference.double() - exact).abs().max().item() / exact.abs().max().item()  # noqa
    assert error(z[0] - z[1]) < 0.02 and error(z[0] - z[1]) < 2 * error(apart[0].double() - apart[1].double())


def test_a_texts_attention_and_log_sum_exp_are_the_same_in_any_block_size():
    q, (k, v), _, _ = layer(torch.float32)
    logits = q.double() @ k.double().transpose(-1, -2) * D ** -0.5
    for block in (B * HEADS * T_POS * 3, merge.LOGIT_BLOCK):  # 3 queries per block, and all at once
        a, log_sum = merge.text_attention(q, k, v, block)
        torch.testing.assert_close(a.double(), attention(q, k, v), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(log_sum.double(), logits.logsumexp(dim=-1).transpose(1, 2), rtol=1e-6, atol=1e-6)
