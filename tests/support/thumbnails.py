"""A template thumbnail from pictures (a run's output images, or a screenshot of the workflow): the pictures side by
side, a caption strip under them (Pillow).

ComfyUI serves example_workflows/<name>.jpg beside <name>.json as the template's card picture.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageSequence

SIZE = 384  # the template card shows a 256×256 picture (object-contain): square, with room for 1.5× screens
LINE = 18  # caption line height
GAP = 6
BACKGROUND = (27, 27, 27)
FRAMES = 3  # frames shown of an animation, in one strip


def images_of(history: dict, node_ids: list[str]) -> list[Image.Image]:
    """The first image of each output node in ``node_ids`` (an animation: a strip of FRAMES frames spread over
    it), from the files ComfyUI wrote."""
    import folder_paths

    pictures = []
    for node_id in node_ids:
        item = history[node_id]["images"][0]
        path = Path(folder_paths.get_directory_by_type(item["type"])) / item["subfolder"] / item["filename"]
        with Image.open(path) as image:
            frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(image)]
        if len(frames) == 1:
            pictures.append(frames[0])
        else:
            picks = sorted({round(i * (len(frames) - 1) / (FRAMES - 1)) for i in range(FRAMES)})
            strip = Image.new("RGB", (sum(frames[i].width for i in picks) + GAP * (len(picks) - 1),
                                      frames[0].height), BACKGROUND)
            for n, i in enumerate(picks):
                strip.paste(frames[i], (n * (frames[0].width + GAP), 0))
            pictures.append(strip)
    return pictures


def scaled(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` fitted into width × height: small pictures (the toy model's 32 px, the tiny models' 64 px) by whole
    pixels, so they stay sharp."""
    factor = min(width / image.width, height / image.height)
    size = (max(1, int(image.width * factor)), max(1, int(image.height * factor)))
    sharp = factor >= 2
    return image.resize(size, Image.Resampling.NEAREST if sharp else Image.Resampling.LANCZOS)


def grid(images: list[Image.Image], width: int, height: int, named: int) -> tuple[int, int]:
    """(columns, rows) that show the most picture area when each image is fitted into its cell (``named`` px of
    each cell hold the image's name)."""
    def shown(columns: int) -> float:
        rows = -(-len(images) // columns)
        cell_w, cell_h = (width - GAP * (columns + 1)) / columns, (height - GAP * (rows + 1)) / rows - named
        return sum(min(cell_w / i.width, cell_h / i.height) ** 2 * i.width * i.height for i in images)

    columns = max(range(1, len(images) + 1), key=shown)
    return columns, -(-len(images) // columns)


def picture_height(lines: int) -> int:
    """The height above a caption of ``lines`` lines."""
    return SIZE - LINE * lines - GAP


def single_picture_size(lines: int) -> tuple[int, int]:
    """The size one unnamed picture is shown at, above a caption of ``lines`` lines: a screenshot taken at this
    size is shown pixel for pixel."""
    return SIZE - 2 * GAP, picture_height(lines) - 2 * GAP


def thumbnail(images: list[Image.Image], caption: list[str], names: list[str] | None = None) -> Image.Image:
    """A SIZE × SIZE picture: the images in a grid (in order, row by row), each with its name under it where
    ``names`` gives one, and the caption's lines at the bottom."""
    from harness import module

    labels = module("attention.labels")
    names = names or [""] * len(images)
    named = LINE if any(names) else 0
    area = picture_height(len(caption))
    columns, rows = grid(images, SIZE, area, named)
    cell_w, cell_h = (SIZE - GAP * (columns + 1)) // columns, (area - GAP * (rows + 1)) // rows - named
    sheet = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    for index, image in enumerate(images):
        panel = scaled(image, cell_w, cell_h)
        row, column = divmod(index, columns)
        x = GAP + column * (cell_w + GAP) + (cell_w - panel.width) // 2
        y = GAP + row * (cell_h + named + GAP) + (cell_h - panel.height) // 2
        sheet.paste(panel, (x, y))
        if names[index]:
            text = labels.text_image(labels.fit(names[index], cell_w, 12), 12, "#c8c8c8")
            sheet.paste(text, (x + (panel.width - text.width) // 2, y + panel.height + 2), text)
    for n, line in enumerate(caption):
        text = labels.text_image(labels.fit(line, SIZE - 2 * GAP, 14), 14, "#f0f0f0")
        sheet.paste(text, ((SIZE - text.width) // 2, area + n * LINE + (LINE - text.height) // 2), text)
    return sheet
