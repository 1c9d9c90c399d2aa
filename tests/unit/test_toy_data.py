"""The toy concept dataset and its pixel-rule detectors (pure numpy, no ComfyUI)."""

import numpy as np
import pack

data, detect = pack.module("toy.data"), pack.module("toy.detect")

HELD_OUT_SEED = 2026  # training draws its scenes from seed 0


def test_the_generator_is_deterministic():
    first, again, other = data.scenes(7, 20), data.scenes(7, 20), data.scenes(8, 20)
    assert first == again and first != other
    np.testing.assert_array_equal(data.images(first), data.images(again))
    captions = lambda: [data.random_caption(s, np.random.default_rng(3)) for s in first]  # noqa: E731
    assert captions() == captions()


def test_images_are_32_pixel_rgb_with_varied_backgrounds():
    images = data.images(data.scenes(1, 50))
    assert images.shape == (50, 32, 32, 3) and images.min() >= 0 and images.max() <= 1
    corners = images[:, 3, 3]  # inside any frame, outside any shape
    assert corners.std(axis=0).min() > 0.05


def test_captions_are_plain_english_and_name_only_what_is_shown():
    rng = np.random.default_rng(0)
    vocabulary = {"a", "with", "and", "shape", *data.SHAPES, *data.COLOURS, *data.ACCESSORIES}
    kinds = set()
    for scene in data.scenes(2, 300):
        text = data.random_caption(scene, rng)
        words = text.replace(",", "").split()
        assert set(words) <= vocabulary, text
        named = set(words) - {"a", "with", "and", "shape"}
        shown = {scene.shape, scene.colour, *(a for a in data.ACCESSORIES if getattr(scene, a))}
        assert named <= shown, (text, scene)
        kinds.add("empty" if not text else "tags" if not text.startswith("a ") else "sentence")
    assert kinds == {"empty", "tags", "sentence"}


def test_every_detector_is_at_least_95_percent_right_on_held_out_images():
    scenes = data.scenes(HELD_OUT_SEED, 600)
    found = detect.detect(data.images(scenes))
    for key in ("colour", "shape", "dot", "frame"):
        accuracy = np.mean([f[key] == getattr(s, key) for f, s in zip(found, scenes, strict=True)])
        assert accuracy >= 0.95, (key, accuracy)


def test_detectors_find_nothing_on_a_blank_background():
    blank = np.full((1, 32, 32, 3), 0.45, np.float32)
    assert detect.detect(blank) == [{"colour": None, "shape": None, "dot": False, "frame": False}]
    assert not detect.present(detect.detect(blank)[0], "red")
