"""The toy concept model the pack ships: small, deterministic, trained reproducibly, and its negatives work."""

import os
import subprocess
import sys
from pathlib import Path

import harness
import pack
import pytest
import safetensors.torch
import torch
from comfy_helpers import call_node, noise_per_seed

detect = pack.module("toy.detect")

MARGIN = 0.2  # measured drops on these 8 seeds: blue 0.375 → 0 (eq. 9), dot 0.375 → 0.125 (eq. 8, s⁻ = 8)


def sample(model, clip, vae, positive: str, negative: str | None, neg_scale: float | None = None, seeds=range(8),
           steps=12, cfg=3.0):
    """Images of ``positive`` over ``seeds``: without a negative (p against u), with it by eq. 9 (``neg_scale`` None)
    or by eq. 8 with that s⁻, through NegativeGuidanceCFG."""
    import comfy.sample

    encode = lambda text: clip.encode_from_tokens_scheduled(clip.tokenize(text))  # noqa: E731
    empty = encode("")
    if negative is not None:
        mode = "standard" if neg_scale is None else "independent"
        model = call_node("NegativeGuidanceCFG", model=model, mode=mode, neg_scale=neg_scale or 0.0, neg_start=0.0,
                          neg_end=1.0, window_unit="steps", neg_schedule="constant", empty=empty)[0]
    latent = torch.zeros(len(seeds), 3, 32, 32)
    noise = noise_per_seed(latent, seeds)
    samples = comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", encode(positive),
                                  encode(negative) if negative is not None else empty, latent, disable_pbar=True)
    return vae.decode(samples)


def test_the_shipped_weights_are_small_and_load_deterministically(comfy):
    WEIGHTS = pack.module("toy.model").WEIGHTS

    assert WEIGHTS.stat().st_size <= 20e6
    first, second = call_node("ToyConceptModelLoader"), call_node("ToyConceptModelLoader")
    for a, b in ((first[0].model.diffusion_model, second[0].model.diffusion_model),
                 (first[1].cond_stage_model, second[1].cond_stage_model)):
        assert a.state_dict().keys() == b.state_dict().keys()
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    images = [sample(*models, "a red circle", None, seeds=[3], steps=6) for models in (first, second)]
    assert torch.equal(images[0], images[1])
    assert images[0].shape == (1, 32, 32, 3) and images[0].min() >= 0 and images[0].max() <= 1


def test_the_model_draws_what_the_prompt_asks(comfy):
    models = call_node("ToyConceptModelLoader")
    images = sample(*models, "a blue square with a frame", None)
    assert detect.rate(images, "blue") >= 0.75
    assert detect.rate(images, "frame") >= 0.75


@pytest.mark.parametrize(("positive", "negative", "neg_scale"), [("a triangle", "blue", None),
                                                                 ("a circle with a frame", "dot", 8.0)])
def test_a_negative_lowers_its_concept_rate(comfy, positive, negative, neg_scale):
    """8 seeds, 12 steps, cfg 3: the concept's rate drops by at least MARGIN; the noun by eq. 8 with s⁻ = 8, as eq. 9
    at cfg 3 (s⁻ = 2) barely moves it (full study: bench/bench_toy_concepts.py)."""
    models = call_node("ToyConceptModelLoader")
    without = detect.rate(sample(*models, positive, None), negative)
    with_negative = detect.rate(sample(*models, positive, negative, neg_scale), negative)
    assert without - with_negative >= MARGIN, (without, with_negative)


def test_training_is_reproducible(comfy, tmp_path):
    train = pack.module("toy.train").train

    for name in ("a", "b"):
        train(steps=2, batch_size=4, pool=8, lr=1e-3, ema_decay=0.9, out=tmp_path / f"{name}.safetensors", seed=5)
    a, b = (safetensors.torch.load_file(tmp_path / f"{name}.safetensors") for name in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_offline_demo_tells_its_story_and_leaves_only_its_output(comfy, tmp_path):
    """The README's main job, as a user runs it (bash scripts/demo.sh), in a fresh process."""
    env = os.environ | {"COMFYUI_PATH": str(harness.find_comfyui()), "NEGATIVE_GUIDANCE_PYTHON": sys.executable,
                        "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    result = subprocess.run(["bash", str(harness.PACK_ROOT / "scripts" / "demo.sh"), "--out", str(tmp_path / "out")],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    names = {path.name for path in (tmp_path / "out").rglob("*") if path.is_file()}
    for prefix in ("1_no_negative", "2_negative", "3_negative_from_step_5", "4_r_t_plot", "5_heatmaps",
                   "6_overlays"):
        assert any(name.startswith(prefix) and name.endswith(".png") for name in names), prefix
    assert {".csv", ".json", ".safetensors"} <= {Path(name).suffix for name in names}
    assert "How often the 8 images show a dot" in result.stdout and "r_t of the second run" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr and "it/s" not in result.stdout + result.stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # nothing left behind but the output folder
