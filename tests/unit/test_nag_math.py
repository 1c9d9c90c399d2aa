"""Unit tests of guidance/nag.py and the attention terms' planning: the four NAG equations, their neutral values,
the shared normalisation of several negatives, and windows as for eq. 8 terms."""

import pytest
import torch
from pack import guidance

SIGMAS = [14.6, 9.7, 6.0, 3.9, 2.4, 1.5, 0.9, 0.5, 0.25, 0.1, 0.0]


def no_percent(p):
    raise AssertionError("a steps window must not consult percent_to_sigma")


@pytest.fixture
def z():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 16, 32, generator=g), torch.randn(2, 16, 32, generator=g), torch.randn(2, 16, 32, generator=g)


def test_the_four_equations(z):
    z_pos, z_neg, noise = z
    z_neg = torch.cat([z_neg[:, :8], z_pos[:, 8:] + 0.05 * noise[:, 8:]], dim=1)  # tokens 8–15: N < τ
    phi, tau, alpha = 4.0, 2.5, 0.25
    z_tilde = z_pos + phi * (z_pos - z_neg)
    n = z_tilde.abs().sum(-1, keepdim=True) / z_pos.abs().sum(-1, keepdim=True)
    z_hat = z_tilde * torch.minimum(n, torch.tensor(tau)) / n
    expected = alpha * z_hat + (1 - alpha) * z_pos
    torch.testing.assert_close(guidance.normalized_attention_guidance(z_pos, [z_neg], [phi], tau, alpha), expected)
    assert (n > tau).any() and (n < tau).any()  # both branches of min(N, τ) are exercised


def test_alpha_0_is_the_positive_and_the_cap_holds(z):
    z_pos, z_neg, _ = z
    assert torch.equal(guidance.normalized_attention_guidance(z_pos, [z_neg], [4.0], 2.5, 0.0), z_pos)
    capped = guidance.normalized_attention_guidance(z_pos, [z_neg], [50.0], 1.5, 1.0)
    ratio = capped.abs().sum(-1) / z_pos.abs().sum(-1)
    assert ratio.max() <= 1.5 + 1e-5 and ratio.max() >= 1.5 - 1e-5


def test_negatives_sum_before_one_normalisation(z):
    z_pos, a, b = z
    summed = guidance.normalized_attention_guidance(z_pos, [a, b], [1.0, 3.0], 2.0, 0.5)
    z_tilde = z_pos + 1.0 * (z_pos - a) + 3.0 * (z_pos - b)
    n = z_tilde.abs().sum(-1, keepdim=True) / z_pos.abs().sum(-1, keepdim=True)
    torch.testing.assert_close(summed, 0.5 * z_tilde * torch.clamp(n, max=2.0) / n + 0.5 * z_pos)
    half = guidance.normalized_attention_guidance(z_pos, [a, a], [2.0, 2.0], 2.0, 0.5)
    torch.testing.assert_close(half, guidance.normalized_attention_guidance(z_pos, [a], [4.0], 2.0, 0.5))


def test_fp16_inputs_are_combined_in_fp32_and_returned_in_their_dtype(z):
    z_pos, z_neg, _ = (t.half() for t in z)
    out = guidance.normalized_attention_guidance(z_pos, [z_neg], [4.0], 2.5, 0.25)
    assert out.dtype == torch.float16
    reference = guidance.normalized_attention_guidance(z_pos.float(), [z_neg.float()], [4.0], 2.5, 0.25)
    torch.testing.assert_close(out.float(), reference, rtol=1e-3, atol=1e-3)


def test_a_zero_positive_token_gives_its_known_value():
    """Z⁺ = 0: Z̃ = −φ·Z⁻ grows without bound against ‖Z⁺‖₁ = 0 (N = ∞ > τ), so Ẑ = Z̃·τ/N = 0 and Z = 0; with
    Z⁻ = 0 too, N = 0/0 is not > τ and Z = Z̃ = 0. Never NaN."""
    z_pos = torch.zeros(1, 2, 4)
    for z_neg in (torch.ones(1, 2, 4), torch.zeros(1, 2, 4)):
        out = guidance.normalized_attention_guidance(z_pos, [z_neg], [1.0], 2.5, 0.5)
        assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("scale", -1.0, "must be ≥ 0"), ("scale", float("nan"), "finite"), ("tau", 0.5, "must be ≥ 1"),
    ("tau", float("inf"), "finite"), ("alpha", 1.5, "must lie in [0, 1]"), ("alpha", -0.1, "must lie in [0, 1]"),
    ("schedule", "sine", "must be one of"),
])
def test_bad_settings_are_refused(field, value, reason):
    with pytest.raises(guidance.InvalidInput, match=reason.replace("[", r"\[").replace("]", r"\]")) as error:
        guidance.AttentionTerm("a", **{"scale": 1.0, "tau": 2.5, "alpha": 0.25} | {field: value})
    assert error.value.field == field


def test_the_planner_gives_each_calls_weights_by_window_and_schedule():
    window = guidance.Window(0.3, 1.0, guidance.STEPS)
    terms = [guidance.AttentionTerm("a", 4.0, window=window), guidance.AttentionTerm("b", 0.0),
             guidance.AttentionTerm("c", 2.0, window=guidance.Window(0.0, 0.5), schedule="linear")]
    plans = [guidance.plan_attention(terms, s, SIGMAS, no_percent) for s in SIGMAS[:-1]]
    assert [sorted(p) for p in plans] == [["c"]] * 3 + [["a", "c"]] * 2 + [["a"]] * 5  # b (φ = 0) never
    assert [p.get("c") for p in plans[:5]] == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0])
    assert guidance.attention_range(terms) == (0, 2)


def test_shared_tau_and_alpha_are_the_phi_weighted_mean():
    a = guidance.AttentionTerm("a", 1.0, tau=2.0, alpha=0.2)
    b = guidance.AttentionTerm("b", 3.0, tau=4.0, alpha=0.6)
    assert guidance.shared_normalisation([a, b], [1.0, 3.0]) == pytest.approx((3.5, 0.5))
    assert guidance.shared_normalisation([a, a], [1.0, 3.0]) == (2.0, 0.2)
