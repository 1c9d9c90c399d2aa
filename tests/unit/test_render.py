"""Unit tests of the pictures (attention/render.py, attention/labels.py): labels in Latin, CJK, Arabic and emoji are
drawn where the figure says, a missing glyph is its code point and never a tofu box, one palette with the JS plot,
bounded grids."""

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from pack import module
from PIL import Image

labels, R = module("attention.labels"), module("attention.render")

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["dot", "猫", "قطة", "🐱"]
RELATED = ["circle", "犬", "كلب", "🐶"]


def pixels(fig: R.Figure, name: str) -> np.ndarray:
    """The RGB pixels (int) inside one of the figure's label boxes."""
    x0, y0, x1, y1 = fig.boxes[name]
    return np.asarray(fig.image.convert("RGB"), dtype=int)[y0:y1, x0:x1]


def on(text: str, size: int = 12, fill: str = R.TEXT, background: str = "white", rotate: bool = False) -> np.ndarray:
    """What a label looks like drawn alone on ``background``."""
    label = labels.text_image(text, size, fill)
    label = label.rotate(90, expand=True) if rotate else label
    base = Image.new("RGBA", label.size, background)
    base.alpha_composite(label)
    return np.asarray(base.convert("RGB"), dtype=int)


def assert_label(fig: R.Figure, name: str, text: str, **style) -> None:
    """The box holds exactly ``text`` as drawn alone, and it has ink (it is not blank)."""
    drawn = pixels(fig, name)
    assert drawn.shape == on(text, **style).shape, f"{name}: box of another size than {text!r}"
    assert np.abs(drawn - on(text, **style)).max() <= 1, f"{name}: not {text!r}"
    assert (np.abs(drawn - 255).sum(-1) > 150).sum() >= 8, f"{name}: {text!r} left no ink"


def near(image: np.ndarray, hex_colour: str, tolerance: int = 40) -> np.ndarray:
    rgb = np.array([int(hex_colour[k:k + 2], 16) for k in (1, 3, 5)])
    return np.abs(image - rgb).max(-1) <= tolerance


@pytest.fixture
def no_fonts(monkeypatch):
    """Only Pillow's built-in font (Latin): no system font, no fontconfig."""
    monkeypatch.setattr(labels, "font_index", lambda: {})
    monkeypatch.setattr(labels, "fontconfig", lambda char: ())
    for cached in (labels.font_for, labels.text_image):
        cached.cache_clear()
    yield
    for cached in (labels.font_for, labels.text_image):
        cached.cache_clear()


def curves():
    out = {}
    for i, (word, related) in enumerate(zip(WORDS, RELATED, strict=True)):
        r = [math.nan if t < 2 else 0.2 + 0.5 * math.exp(-(((t - 6 - i) / 3) ** 2)) for t in range(20)]
        out[word] = {"related": related, "r": r}
    return out


def test_the_js_plot_uses_the_python_palette_in_order():
    source = (ROOT / "web" / "js" / "negative_guidance.js").read_text(encoding="utf-8")
    found = re.search(r"const COLOURS = (\[[^\]]*\]);", source)
    assert found, "web/js/negative_guidance.js has no COLOURS list"
    assert json.loads(found.group(1)) == list(R.PALETTE)


def test_pillows_builtin_font_has_latin_only():
    assert labels.has_glyph(labels.BUILTIN, "d")
    assert not labels.has_glyph(labels.BUILTIN, "猫")
    assert not labels.has_glyph(labels.BUILTIN, "🐱")


@pytest.mark.skipif(not shutil.which("fc-list"), reason="fontconfig's fc-list is the independent oracle")
@pytest.mark.parametrize("char", WORDS[1:] + ["d"])
def test_glyph_detection_agrees_with_fontconfig(char):
    listed = subprocess.run(["fc-list", f":charset={ord(char[0]):x}", "file"], capture_output=True, text=True,
                            encoding="utf-8", check=True).stdout
    covering = {Path(line.strip().rstrip(":")).name.lower() for line in listed.splitlines()}
    for name, path in labels.font_index().items():
        if name in {n.lower() for n in (*labels.FONT_FILES, *labels.EMOJI_FILES)}:
            assert labels.has_glyph(path, char[0]) == (name in covering), f"{name} and {char!r}"


@pytest.mark.parametrize("word", WORDS)
def test_each_word_is_drawn_with_a_font_that_has_it_or_as_its_code_point(word):
    for path, piece in labels.runs(word):
        drawn = [c for c in labels.clusters(piece) if not c.isspace()]
        assert all(labels.has_glyph(path, c[0]) for c in drawn), f"{word!r}: {piece!r} in {path or 'builtin'}"
    font = labels.font_for(word[0])
    expected = (font, word) if font is not None else (labels.font_for("U"), labels.code_points(word))
    assert labels.runs(word) == [expected]


def test_a_character_no_font_has_is_its_code_point_not_a_tofu_box(no_fonts):
    assert labels.runs("猫") == [(labels.BUILTIN, "U+732B")]
    assert labels.runs("a猫b") == [(labels.BUILTIN, "a U+732B b")]
    assert labels.runs("🐱") == [(labels.BUILTIN, "U+1F431")]
    assert "".join(piece for _, piece in labels.runs("dot → circle")) == "dot -> circle"  # an ASCII look-alike
    assert np.array_equal(np.asarray(labels.text_image("猫")), np.asarray(labels.text_image("U+732B")))
    font, _ = labels.load(labels.BUILTIN, 12)
    tofu = labels.glyph(font, "猫")
    assert np.array_equal(tofu, labels.glyph(font, labels.NOTDEF))  # what drawing the raw character would give
    assert np.asarray(labels.text_image("猫")).shape != tofu.shape


def test_without_libraqm_right_to_left_words_are_reversed_for_display():
    basic, _ = labels.load(labels.BUILTIN, 12)  # Pillow's built-in font uses the basic layout
    assert basic.layout_engine == labels.ImageFont.Layout.BASIC
    assert labels.visual(basic, "negative: قطة سوداء!") == "negative: ءادوس ةطق!"


def test_an_unassigned_code_point_is_drawn_as_such_with_the_system_fonts():
    pieces = "".join(piece for _, piece in labels.runs("x\u0378y"))
    assert pieces == "x U+0378 y"


def test_rt_plot_labels_title_axes_legend_and_gate():
    series = R.word_series(curves())
    fig = R.rt_figure(series, gate_step=5, title="r_t per step (frobenius)")
    assert fig.image.size == (640, 360)
    assert_label(fig, "title", "r_t per step (frobenius)", size=13)
    assert_label(fig, "x_label", "step")
    assert_label(fig, "y_label", "r_t", rotate=True)
    for i, (word, related) in enumerate(zip(WORDS, RELATED, strict=True)):
        assert_label(fig, f"legend:{i}", f"{word} → {related}")
    assert "legend:4" not in fig.boxes
    gate = pixels(fig, "gate")
    assert (gate.sum(-1) < 3 * 140).sum() >= 20, "the gate label has no dark text"
    assert fig.boxes["gate"][0] > fig.boxes["axes"][0]


def test_rt_plot_gate_is_a_dashed_line_at_its_step():
    series = R.word_series(curves())
    with_gate, without = (np.asarray(R.rt_figure(series, g).image.convert("RGB"), dtype=int) for g in (5, None))
    left, top, right, bottom = R.rt_figure(series, 5).boxes["axes"]
    changed = np.abs(with_gate - without).sum(-1) > 0
    label_box = R.rt_figure(series, 5).boxes["gate"]
    changed[label_box[1] - 3:label_box[3] + 3, label_box[0] - 4:label_box[2] + 4] = False
    columns = np.flatnonzero(changed.any(0))
    assert list(columns) == [round(left + (right - left) * 5 / 19)]
    rows = changed[top + 1:bottom, columns[0]]
    assert 0.2 < rows.mean() < 0.8, "the gate line is not dashed"


def test_rt_plot_leaves_gaps_at_nan_steps_and_draws_each_colour():
    values = [0.5] * 10
    values[5] = math.nan
    fig = R.rt_figure([R.Series("dot → circle", values, 3), R.Series("", [0.2] * 10, 1)])
    image = np.asarray(fig.image.convert("RGB"), dtype=int)
    left, top, right, bottom = fig.boxes["axes"]
    x_of = lambda t: round(left + (right - left) * t / 9)  # noqa: E731
    inside = image[top + 1:bottom, :]
    assert near(inside[:, x_of(2.5)], R.PALETTE[3]).any() and near(inside[:, x_of(7.5)], R.PALETTE[3]).any()
    assert not near(inside[:, x_of(5)], R.PALETTE[3]).any(), "NaN step is not a gap"
    assert near(inside[:, x_of(5)], R.PALETTE[1]).any()
    assert "legend:1" not in fig.boxes, "an unlabelled series got a legend entry"


def test_rt_plot_legend_says_how_many_more_past_what_fits():
    series = [R.Series(f"word {i} → circle", [0.1 * i] * 5, i) for i in range(30)]
    fig = R.rt_figure(series, height=240)
    shown = sum(name.startswith("legend:") and name != "legend:more" for name in fig.boxes)
    assert 0 < shown < 30
    assert_label(fig, "legend:more", f"+ {30 - shown} more", fill=R.MUTED)


def test_heatmap_grid_labels_rows_and_step_columns():
    maps = torch.rand(8, 6, 4, 4)
    rows = [f"positive: {w}" for w in RELATED] + [f"negative: {w}" for w in WORDS]
    fig = R.grid_figure(maps, rows, [f"t{t}" for t in range(6)], "attention per step")
    for i, label in enumerate(rows):
        assert_label(fig, f"row:{i}", label)
        assert fig.boxes[f"row:{i}"][2] <= fig.boxes["grid"][0]
    assert_label(fig, "column:0", "t0", size=11, fill=R.MUTED)
    assert fig.boxes["column:0"][3] <= fig.boxes["grid"][1]
    assert_label(fig, "caption", "step", fill=R.MUTED)
    assert_label(fig, "bar:max", "row max", size=11, fill=R.MUTED)


def test_heatmap_grid_scales_each_row_to_its_maximum():
    maps = torch.zeros(2, 3, 4, 4)
    maps[0] = 1.0
    maps[1, 2] = 5.0
    fig = R.grid_figure(maps, ["a", "b"])
    x0, y0, x1, y1 = fig.boxes["grid"]
    pitch = (x1 - x0 + 2) // 3
    image = np.asarray(fig.image.convert("RGB"), dtype=int)
    top_colour = "#" + "".join(f"{round(255 * c):02x}" for c in R.RAMP[-1].tolist())
    assert near(image[y0 + 2, x0 + 2][None], top_colour, 2).all()  # row a: 1 of max 1
    assert near(image[y0 + pitch + 2, x0 + 2 * pitch + 2][None], top_colour, 2).all()  # row b: 5 of max 5


def test_a_thousand_steps_of_ten_words_stay_a_small_grid():
    maps = torch.rand(10, 1000, 8, 8)
    fig = R.grid_figure(maps, [f"word {i}" for i in range(10)])
    width, height = fig.image.size
    assert width <= R.MAX_WIDTH and height <= 70 + 10 * 66
    assert width * height <= R.MAX_WIDTH * (70 + 10 * 66)
    assert R.shown_steps(1000)[0] == 0 and R.shown_steps(1000)[-1] == 999 and len(R.shown_steps(1000)) == 50
    assert_label(fig, "caption", "step: 50 of 1000 shown, evenly spaced", fill=R.MUTED)
    assert_label(fig, "column:0", "0", size=11, fill=R.MUTED)


def test_effect_grid_shares_one_scale_with_a_labelled_colour_bar():
    maps = torch.zeros(2, 3, 4, 4)
    maps[0, 0] = 0.5
    maps[1, 0] = 0.25
    fig = R.grid_figure(maps, ["dot", "🐱"], per_row=False)
    assert_label(fig, "bar:max", "0.5", size=11, fill=R.MUTED)
    assert_label(fig, "bar:min", "0", size=11, fill=R.MUTED)
    image = np.asarray(fig.image.convert("RGB"), dtype=int)
    x0, y0, x1, y1 = fig.boxes["grid"]
    pitch = (x1 - x0 + 2) // 3
    hexes = ["#" + "".join(f"{round(255 * c):02x}" for c in R.colormap(torch.tensor(v)).tolist()) for v in (1, 0.5)]
    assert near(image[y0 + 2, x0 + 2][None], hexes[0], 2).all()
    assert near(image[y0 + pitch + 2, x0 + 2][None], hexes[1], 2).all(), "rows are not on one scale"
    bx0, by0, bx1, by1 = fig.boxes["bar"]
    assert near(image[by0 + 1, bx0 + 5][None], hexes[0], 8).all()


@pytest.mark.parametrize("background", [0.0, 1.0])
def test_overlay_names_its_word_on_a_box_legible_on_any_image(background):
    image = torch.full((128, 128, 3), background)
    attention_map = torch.zeros(4, 4)
    boxes = {}
    for word in WORDS:
        fig = R.overlay_figure(image, attention_map, f"negative: {word}", colour_index=0)
        drawn = pixels(fig, "label")
        luminance = drawn.mean(-1)
        assert (luminance > 200).sum() >= 10 and (luminance < 80).sum() >= 10, f"{word!r} is not light on dark"
        boxes[word] = drawn
    assert len({d.tobytes() for d in boxes.values()}) == len(WORDS), "the words are not drawn"


def test_overlay_blends_the_scaled_map_over_the_image():
    attention_map = torch.zeros(4, 4)
    attention_map[3, 3] = 2.0
    out = R.overlay(torch.zeros(64, 64, 3), attention_map, alpha=0.5)
    assert out.shape == (64, 64, 3)
    torch.testing.assert_close(out[63, 63], 0.5 * R.RAMP[-1], atol=1 / 255, rtol=0)
    torch.testing.assert_close(out[32, 8], 0.5 * R.RAMP[0], atol=1 / 255, rtol=0)


def test_pictures_are_image_tensors():
    for picture in (R.rt_plot(R.word_series(curves()), 5), R.heatmap_grid(torch.rand(2, 3, 4, 4)),
                    R.effect_grid(torch.rand(2, 3, 4, 4)), R.overlay(torch.rand(32, 32, 3), torch.rand(4, 4), "dot")):
        assert picture.ndim == 3 and picture.shape[-1] == 3 and picture.dtype == torch.float32
        assert picture.min() >= 0 and picture.max() <= 1
