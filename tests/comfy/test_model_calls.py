"""The model is called with exactly the conds each step needs, in one batched call per step."""

import pytest
from comfy_helpers import Recorder, noise_per_seed, patched, sample


def recorded(t):
    recorder = Recorder()
    model = t.model()
    model.set_model_unet_function_wrapper(recorder)
    return model, recorder


def test_standard_mode_makes_two_evaluations_per_step(tiny):
    model, recorder = recorded(tiny)
    sample(tiny, patched(tiny, model, mode="standard"))
    assert recorder.conds_per_call() == [2, 2, 2, 2]
    assert [rows for _, _, rows in recorder.calls] == [4, 4, 4, 4]  # 2 conds × batch 2, one call per step


def test_eq8_evaluates_the_negative_only_inside_its_window(tiny):
    model, recorder = recorded(tiny)
    sample(tiny, patched(tiny, model, neg_start=0.5), steps=6)  # on at steps 3, 4, 5
    assert recorder.conds_per_call() == [2, 2, 2, 3, 3, 3]


def test_eq8_without_a_window_makes_three_evaluations(tiny):
    model, recorder = recorded(tiny)
    sample(tiny, patched(tiny, model))
    assert recorder.conds_per_call() == [3, 3, 3, 3]


def test_gated_standard_mode_swaps_u_for_n(tiny):
    model, recorder = recorded(tiny)
    sample(tiny, patched(tiny, model, mode="standard", neg_start=0.5))
    assert recorder.conds_per_call() == [2, 2, 2, 2]


@pytest.mark.parametrize("sampler, calls_per_step", [("heun", 2), ("dpm_2", 2), ("dpmpp_sde", 2)])
@pytest.mark.parametrize("denoise", [1.0, 0.6])
def test_multi_call_samplers_switch_the_gate_at_the_right_step(tiny, sampler, calls_per_step, denoise):
    import comfy.samplers

    model, recorder = recorded(tiny)
    steps, first_on = 6, 2
    sample(tiny, patched(tiny, model, neg_start=first_on / steps), steps=steps, sampler=sampler, denoise=denoise)
    ksampler = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler=sampler, scheduler="normal",
                                       denoise=denoise)
    sigmas = ksampler.sigmas.tolist()  # the sampler's own schedule (dpm_2 drops the penultimate sigma)
    assert len(recorder.calls) == calls_per_step * steps - 1  # the last step is a single Euler call
    gate = sigmas[first_on] * (1 + 1e-4)
    for sigma, conds, _ in recorder.calls:
        assert conds == (3 if sigma <= gate else 2), (sigma, sigmas)
    assert {conds for _, conds, _ in recorder.calls} == {2, 3}
    # step first_on − 1's intermediate calls (dpm_2, dpmpp_sde midpoints) stay off; heun's corrector sits on σ_k
    low, high = sigmas[first_on] * (1 + 1e-4), sigmas[first_on - 1]
    between = [conds for sigma, conds, _ in recorder.calls if low < sigma < high]
    assert between == ([] if sampler == "heun" else [2])


def test_the_online_gate_opens_at_the_step_it_logs(tiny, caplog):
    """auto_start: the negative waits for the positive's layout to settle; the log names the step, and the model
    calls show the negative from exactly that step (no extra evaluation before it)."""
    import logging
    import re

    model, recorder = recorded(tiny)
    with caplog.at_level(logging.INFO):
        sample(tiny, patched(tiny, model, auto_start=0.5, neg_start=0.1), steps=10)
    opened = int(re.search(r"the negative ran from step (\d+) to step 9", caplog.text).group(1))
    assert 1 < opened < 10
    assert recorder.conds_per_call() == [2] * opened + [3] * (10 - opened)
    model, recorder = recorded(tiny)  # the same gate, with a window that closes before it opens
    caplog.clear()
    with caplog.at_level(logging.INFO):
        sample(tiny, patched(tiny, model, auto_start=0.5, neg_start=0.1, neg_end=opened / 10), steps=10)
    assert (f"the negative would have run from step {opened}, after the last step of its window ({opened - 1}): the "
            "negative never ran") in caplog.text
    assert recorder.conds_per_call() == [2] * 10  # it logged "the negative ran from step …"
    with pytest.raises(ValueError, match="^NegativeGuidanceCFG: input 'auto_start': the sampler dpm_fast picks its "
                                         "own steps"):  # the gate never opened, with an INFO line only
        sample(tiny, patched(tiny, model, auto_start=0.5), steps=10, sampler="dpm_fast")


def test_each_image_of_a_batch_opens_its_gate_from_its_own_layout(tiny, caplog):
    """auto_start on a batch of two images whose layouts settle at different steps (seeds 1 and 2, ε 0.5: steps 1 and
    2): each image's samples equal that image sampled alone, and the log names each image's step. The gate read the
    batch's largest change, so image 0 waited for image 1. In the steps between, the call evaluates both plans'
    conditionings (p, u and n) and each image takes its own."""
    import logging
    import types

    import torch

    noise = noise_per_seed(tiny.latent, [1, 2])
    batch = types.SimpleNamespace(**{**vars(tiny), "noise": noise})
    settings = dict(auto_start=0.5, neg_start=0.1)
    model, recorder = recorded(tiny)
    with caplog.at_level(logging.INFO):
        together = sample(batch, patched(tiny, model, **settings), steps=10)
    assert ("image 0: the layout settled at step 1 (change 0.3542 < 0.5): the negative ran from step 2 to step 9; "
            "image 1: the layout settled at step 2") in caplog.text
    assert recorder.conds_per_call() == [2, 2] + [3] * 8
    for image in range(2):
        alone = types.SimpleNamespace(**{**vars(tiny), "latent": tiny.latent[:1], "noise": noise[image:image + 1]})
        single = sample(alone, patched(tiny, tiny.model(), **settings), steps=10)
        torch.testing.assert_close(together[image:image + 1], single, rtol=1e-5, atol=1e-5 * single.abs().max().item())
