"""step_index on the sigmas that euler, heun, dpmpp_2m and dpmpp_sde really evaluate, at denoise 1.0 and 0.6.

The evaluation points follow k-diffusion's samplers: euler and dpmpp_2m call the model once per step at σ_i;
heun adds a corrector at σ_{i+1}; dpmpp_sde adds a midpoint σ_s = exp(−(t_i + h/2)) = √(σ_i·σ_{i+1}). The last
step (σ_{i+1} = 0) is a plain Euler step for heun and dpmpp_sde.
"""

import math

import pytest
from pack import guidance

Window, step_index = guidance.Window, guidance.step_index


def karras(n, sigma_min=0.0292, sigma_max=14.6146, rho=7.0):
    ramp = [i / (n - 1) for i in range(n)]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [(hi + r * (lo - hi)) ** rho for r in ramp] + [0.0]


def sample_sigmas(steps, denoise):
    """ComfyUI's denoise: a schedule for int(steps / denoise) steps, of which the last ``steps`` are run."""
    total = int(steps / denoise)
    return karras(total)[-(steps + 1):]


def evaluations(sampler, sigmas):
    """(σ, step it belongs to under the documented rule) for every model call of one run."""
    calls = []
    for i in range(len(sigmas) - 1):
        calls.append((sigmas[i], i))
        last = sigmas[i + 1] == 0
        if sampler == "heun" and not last:
            calls.append((sigmas[i + 1], i + 1))  # the corrector sits on σ_{i+1}: it sees step i+1's gates
        if sampler == "dpmpp_sde" and not last:
            calls.append((math.sqrt(sigmas[i] * sigmas[i + 1]), i))
    return calls


@pytest.mark.parametrize("denoise", [1.0, 0.6])
@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "dpmpp_sde"])
def test_step_index_of_every_call(sampler, denoise):
    sigmas = sample_sigmas(20, denoise)
    assert len(sigmas) == 21
    for sigma, step in evaluations(sampler, sigmas):
        assert step_index(sigmas, sigma) == step, (sampler, denoise, sigma)


def test_float32_sigmas_map_to_their_schedule_point():
    sigmas = sample_sigmas(10, 1.0)
    for i, sigma in enumerate(sigmas[:-1]):
        assert step_index(sigmas, sigma * (1 + 3e-7)) == i
        assert step_index(sigmas, sigma * (1 - 3e-7)) == i


def test_out_of_schedule_sigmas_clamp():
    sigmas = sample_sigmas(10, 1.0)
    assert step_index(sigmas, 1e9) == 0  # churned σ̂ above σ_0
    assert step_index(sigmas, 0.0) == 9


@pytest.mark.parametrize("sampler", ["heun", "dpmpp_sde"])
def test_a_step_window_switches_at_its_first_step(sampler):
    sigmas = sample_sigmas(10, 0.6)
    window = Window(0.3, 1.0)  # on from step 3
    for sigma, step in evaluations(sampler, sigmas):
        assert window.is_active(sigma, sigmas, percent_to_sigma=None) == (step >= 3)


def test_a_gate_start_of_k_over_n_opens_at_step_k_for_every_n_up_to_1000():
    """AttentionRt's gate_start = gate_step/N, fed to neg_start, opens at gate_step (the ⌊start·N⌋ floor's 10⁻⁶ of a
    step absorbs the binary rounding of k/N); a typed 0.29 at 100 steps opens at step 29."""
    late = [(k, n) for n in range(1, 1001) for k in range(n)
            if Window(k / n, 1.0).step_range([0.0] * (n + 1), None).start != k]
    assert late == []
    assert Window(0.29, 1.0).step_range([0.0] * 101, None).start == 29
