"""Attention-space negatives (AttentionNegativeTerm, NAG) on tiny models of every family they support."""

import pytest
import torch
from comfy_helpers import call_node, pack_module

FAMILIES = ["sd1", "sdxl", "wan21", "wan21_i2v", "flux", "chroma", "sd3", "qwen_image"]
TEXT, NEGATIVE, OTHER = "a photo of a cat", "blurry dog", "red chair"


@pytest.fixture(autouse=True)
def one_thread(comfy):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def encode(family, text):
    import tiny_families

    return tiny_families.encode(tiny_families.clip(family), text)


def attention_term(conditioning, scale=4.0, tau=2.5, alpha=0.25, start=0.0, end=1.0, window_unit="steps",
                   schedule="constant", terms=None):
    return call_node("AttentionNegativeTerm", conditioning=conditioning, scale=scale, tau=tau, alpha=alpha,
                     start=start, end=end, window_unit=window_unit, schedule=schedule, terms=terms)[0]


def standard(model, terms=None, clip=None):
    """NegativeGuidanceCFG in standard mode: at cfg 1 its main negative is off."""
    return call_node("NegativeGuidanceCFG", model=model, mode="standard", neg_scale=0.0, neg_start=0.0, neg_end=1.0,
                     window_unit="steps", neg_schedule="constant", terms=terms, clip=clip)[0]


def sample(family, model, p, n, steps=3, cfg=1.0, seed=42):
    import tiny_families

    import comfy.sample

    latent = tiny_families.latent(family, 2)
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", p, n, latent, seed=seed,
                               disable_pbar=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_smoke(family):
    import tiny_families

    p, n = encode(family, TEXT), encode(family, NEGATIVE)
    base = tiny_families.model(family)
    plain = sample(family, standard(base), p, n)
    off = sample(family, standard(base, attention_term(n, scale=0.0)), p, n)
    on = sample(family, standard(base, attention_term(n)), p, n)
    assert torch.equal(plain, off)
    assert not torch.equal(plain, on)
    assert torch.isfinite(on).all()
