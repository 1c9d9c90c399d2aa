"""The README's two demo pictures, from one run of the demo:

    bash scripts/demo.sh --out toy_demo && python scripts/demo_figures.py toy_demo docs/images

``demo.png``: the 8 pictures of each of the demo's three runs, one labelled row per run. ``r_t_plot_before_after.png``:
the r_t PNG of the pack's first release (``r_t_plot_first_release.png``, kept as it was) beside this run's. Needs
Pillow and the pack's labels (attention/labels.py), no ComfyUI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import harness
from demo import BATCH, CFG, NEGATIVE, POSITIVE, STEPS
from PIL import Image

ROWS = {"1_no_negative": "no negative", "2_negative": f'negative "{NEGATIVE}" (eq. 9)',
        "3_negative_from_step_5": f'"{NEGATIVE}" from step 5 of {STEPS}'}
TILE, GAP, LABEL_WIDTH, TITLE_HEIGHT = 96, 4, 220, 28
FIRST_RELEASE = harness.PACK_ROOT / "docs" / "images" / "r_t_plot_first_release.png"


def paste_text(canvas: Image.Image, text: str, xy: tuple[int, int], size: int = 14) -> None:
    label = harness.module("attention.labels").text_image(text, size)
    canvas.paste(label, xy, label)


def montage(demo: Path) -> Image.Image:
    """The three runs' pictures, seeds 1–BATCH left to right, each row labelled."""
    width = LABEL_WIDTH + BATCH * (TILE + GAP)
    canvas = Image.new("RGB", (width, TITLE_HEIGHT + len(ROWS) * (TILE + GAP)), "white")
    paste_text(canvas, f"'{POSITIVE}', toy model, {STEPS} steps, cfg {CFG:g}, seeds 1–{BATCH}", (8, 6))
    for row, (prefix, label) in enumerate(ROWS.items()):
        top = TITLE_HEIGHT + row * (TILE + GAP)
        paste_text(canvas, label, (8, top + TILE // 2 - 10))
        for column, path in enumerate(sorted(demo.glob(f"{prefix}_*.png"))[:BATCH]):
            picture = Image.open(path).convert("RGB").resize((TILE, TILE), Image.Resampling.NEAREST)
            canvas.paste(picture, (LABEL_WIDTH + column * (TILE + GAP), top))
    return canvas


def before_after(demo: Path) -> Image.Image:
    """The first release's r_t PNG and this run's, side by side under one title each."""
    before = Image.open(FIRST_RELEASE).convert("RGB")
    after = Image.open(next(demo.glob("4_r_t_plot_*.png"))).convert("RGB")
    canvas = Image.new("RGB", (before.width + GAP * 4 + after.width, TITLE_HEIGHT + max(before.height, after.height)),
                       "white")
    canvas.paste(before, (0, TITLE_HEIGHT))
    canvas.paste(after, (before.width + GAP * 4, TITLE_HEIGHT))
    paste_text(canvas, "before: the r_t PNG of the first release (old toy model)", (8, 6), 16)
    paste_text(canvas, "after: the same output today", (before.width + GAP * 4 + 8, 6), 16)
    return canvas


def main() -> None:
    demo, images = Path(sys.argv[1]), Path(sys.argv[2])
    montage(demo).save(images / "demo.png")
    before_after(demo).save(images / "r_t_plot_before_after.png")


if __name__ == "__main__":
    main()
