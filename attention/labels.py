"""Label text for the pictures: each character in the first font that has its glyph, else its code point "U+732B".

Fonts are looked up by file name (``FONT_FILES`` and ``EMOJI_FILES``, the emoji fonts first for pictographs and last
otherwise; Linux, Windows and macOS names) in the usual font folders and in those of ``$NEGATIVE_GUIDANCE_FONTS``
(os.pathsep-separated); then Pillow's built-in font (Latin only); then whatever fontconfig (``fc-list :charset=…``)
says covers the character, where it is installed. A font has a character when the character's rendering differs
from the font's .notdef glyph (the rendering of U+10FFFF, which no font maps). A character that no font has is
drawn in the Latin font as its code point (a few signs such as "→" or "−" as their ASCII look-alikes, ``ASCII``),
never as a tofu box. Arabic and Hebrew are shaped and laid right to left where Pillow has libraqm (with fribidi);
without it their letters are unshaped, in right-to-left order. A label's words keep their left-to-right order.
Fonts, glyph checks and drawn labels are cached.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BUILTIN = ""  # the font key of Pillow's built-in font
FONT_FILES = (  # general text first, then scripts the first ones lack (CJK, Arabic, Indic, ...)
    "DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf", "segoeui.ttf", "arial.ttf",
    "Helvetica.ttc", "NotoSansArabic-Regular.ttf", "NotoNaskhArabic-Regular.ttf", "GeezaPro.ttc",
    "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "wqy-microhei.ttc", "DroidSansFallbackFull.ttf",
    "msyh.ttc", "YuGothR.ttc", "malgun.ttf", "PingFang.ttc", "Hiragino Sans GB.ttc", "AppleSDGothicNeo.ttc",
    "NotoSansDevanagari-Regular.ttf", "NotoSansHebrew-Regular.ttf", "NotoSansThai-Regular.ttf", "Nirmala.ttf",
    "seguisym.ttf", "Arial Unicode.ttf", "Symbola_hint.ttf", "Symbola.ttf",
)
EMOJI_FILES = ("NotoColorEmoji.ttf", "seguiemj.ttf", "Apple Color Emoji.ttc", "TwitterColorEmoji-SVGinOT.ttf")
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts", "C:/Windows/Fonts",
             "~/AppData/Local/Microsoft/Windows/Fonts", "/System/Library/Fonts", "/Library/Fonts", "~/Library/Fonts")
STRIKES = (109, 136, 160, 128, 96, 64, 48, 32, 20)  # pixel sizes of bitmap (colour emoji) fonts, tried in order
JOINERS = {0x200D, 0x20E3} | set(range(0xFE00, 0xFE10)) | set(range(0x1F3FB, 0x1F400)) | set(range(0xE0020, 0xE0080))
NOTDEF = "\U0010ffff"
RTL_LETTERS = "\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefe"  # Hebrew, Arabic, Syriac, Thaana, ... and their forms
RTL = re.compile(f"[{RTL_LETTERS}]+(?:\\s+[{RTL_LETTERS}]+)*")  # right-to-left words and the spaces between
ASCII = {"→": "->", "←": "<-", "−": "-", "–": "-", "—": "-", "⁻": "-", "⁺": "+", "×": "x"}  # before code points


@functools.cache
def font_index() -> dict[str, str]:
    """Lower-case file name → path of every font file under FONT_DIRS and $NEGATIVE_GUIDANCE_FONTS (first found)."""
    extra = [d for d in os.environ.get("NEGATIVE_GUIDANCE_FONTS", "").split(os.pathsep) if d]
    index: dict[str, str] = {}
    for folder in (*extra, *FONT_DIRS):
        for root, _, files in os.walk(Path(folder).expanduser()):
            for name in files:
                if name.lower().endswith((".ttf", ".ttc", ".otf")):
                    index.setdefault(name.lower(), os.path.join(root, name))
    return index


@functools.cache
def fontconfig(char: str) -> tuple[str, ...]:
    """The font files that fontconfig says cover ``char`` (none without fc-list)."""
    if not shutil.which("fc-list"):
        return ()
    try:
        out = subprocess.run(["fc-list", f":charset={ord(char):x}", "file"], capture_output=True, text=True,
                             encoding="utf-8", timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    files = {line.strip().rstrip(":") for line in out.splitlines()}
    fonts = [f for f in files if f.lower().endswith((".ttf", ".otf", ".ttc"))]
    return tuple(sorted(fonts, key=lambda f: ("regular" not in f.lower(), f)))


@functools.cache
def load(path: str, size: int) -> tuple[ImageFont.FreeTypeFont, float]:
    """The font at ``size`` px and scale 1.0; a bitmap font (colour emoji) at the first of STRIKES it has, with the
    scale that brings its glyphs to ``size``."""
    if path == BUILTIN:
        return ImageFont.load_default(size), 1.0
    try:
        return ImageFont.truetype(path, size), 1.0
    except OSError:
        for strike in STRIKES:
            try:
                return ImageFont.truetype(path, strike), size / strike
            except OSError:
                continue
        raise


def ltr(font: ImageFont.FreeTypeFont) -> dict[str, str]:
    """Layout options that keep a label's runs left to right (libraqm only; the basic layout always is)."""
    return {"direction": "ltr"} if font.layout_engine == ImageFont.Layout.RAQM else {}


def visual(font: ImageFont.FreeTypeFont, text: str) -> str:
    """``text`` in display order: libraqm orders it itself; the basic layout gets right-to-left stretches reversed."""
    return text if font.layout_engine == ImageFont.Layout.RAQM else RTL.sub(lambda found: found[0][::-1], text)


def glyph(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    """The RGBA pixels of ``text`` drawn in black from the font's origin (colour glyphs in their own colours)."""
    left, top, right, bottom = font.getbbox(text, **ltr(font))
    image = Image.new("RGBA", (max(right - min(left, 0), 1) + 1, max(bottom - min(top, 0), 1) + 1))
    ImageDraw.Draw(image).text((-min(left, 0), -min(top, 0)), text, font=font, fill="black", embedded_color=True,
                               **ltr(font))
    return np.asarray(image)


@functools.cache
def has_glyph(path: str, char: str) -> bool:
    """Whether the font draws ``char`` as something other than its .notdef glyph."""
    try:
        font, _ = load(path, 24)
    except OSError:
        return False
    drawn, missing = glyph(font, char), glyph(font, NOTDEF)
    return drawn.shape != missing.shape or bool((drawn != missing).any())


def candidates(cluster: str) -> list[str]:
    """The fonts to try for ``cluster``, in order: emoji fonts first for emoji, Pillow's built-in font last."""
    index = font_index()
    emoji = [index[n.lower()] for n in EMOJI_FILES if n.lower() in index]
    text = [index[n.lower()] for n in FONT_FILES if n.lower() in index]
    code = ord(cluster[0])
    pictograph = code >= 0x1F000 or 0x2600 <= code < 0x2800 or "\ufe0f" in cluster
    return [*(emoji + text if pictograph else text + emoji), BUILTIN]


@functools.cache
def font_for(cluster: str) -> str | None:
    """The first font (a path, or BUILTIN) that has the cluster's first character; None when none does."""
    if cluster.isspace():
        return candidates("a")[0]
    for path in (*candidates(cluster), *fontconfig(cluster[0])):
        if has_glyph(path, cluster[0]):
            return path
    return None


def clusters(text: str) -> list[str]:
    """``text`` cut into characters with what attaches to them: combining marks, ZWJ sequences, variation
    selectors, skin tones, flag pairs."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        flag_pair = 0x1F1E6 <= code <= 0x1F1FF and out and len(out[-1]) == 1 and 0x1F1E6 <= ord(out[-1]) <= 0x1F1FF
        joins = code in JOINERS or unicodedata.category(char) in ("Mn", "Mc", "Me") or flag_pair
        if out and (joins or ord(out[-1][-1]) == 0x200D):
            out[-1] += char
        else:
            out.append(char)
    return out


def code_points(cluster: str) -> str:
    """The documented fallback for a character no font has: its ASCII look-alike, else its code points, "U+732B"."""
    if cluster in ASCII:
        return ASCII[cluster]
    return " ".join(f"U+{ord(c):04X}" for c in cluster if ord(c) not in JOINERS)


def runs(text: str) -> list[tuple[str, str]]:
    """``text`` as (font, text) runs of neighbouring characters that share a font; a character that no font has
    becomes its code points in the Latin font, set apart by spaces. Neutral signs such as "→" or "(" stand alone,
    so that right-to-left words on either side of them keep the label's left-to-right order."""
    latin = font_for("U") or BUILTIN
    pieces = [(latin, code_points(c), c not in ASCII) if font_for(c) is None else (font_for(c), c, False)
              for c in clusters(text)]
    pieces = [p for p in pieces if p[1]]  # a lone joiner that no font has leaves nothing
    out: list[tuple[str, str]] = []
    for k, (path, piece, fallback) in enumerate(pieces):
        before = pieces[k - 1][1] if k else " "
        if (fallback or pieces[k - 1][2]) and not before[-1].isspace() and not piece[0].isspace():
            piece = " " + piece
        neutral = "ON" in (unicodedata.bidirectional(piece[-1]), unicodedata.bidirectional(before[-1]))
        if out and out[-1][0] == path and not neutral:
            out[-1] = (path, out[-1][1] + piece)
        else:
            out.append((path, piece))
    return out


@functools.lru_cache(maxsize=2048)
def text_image(text: str, size: int = 12, fill: str = "#222222") -> Image.Image:
    """One line of text as an RGBA image (transparent around the glyphs), ``size`` px, baseline shared by all runs.
    Cached: treat the image as read-only."""
    pieces = []
    for path, piece in runs(text):
        font, scale = load(path, size)
        piece = visual(font, piece)
        left, top, right, bottom = font.getbbox(piece, anchor="ls", **ltr(font))
        ascent, descent = font.getmetrics()
        advance = font.getlength(piece, **ltr(font))
        pieces.append((font, scale, piece, min(top, -ascent), max(bottom, descent), max(advance, right)))
    top = min((p[3] * p[1] for p in pieces), default=-size)
    bottom = max((p[4] * p[1] for p in pieces), default=0)
    width = sum(p[5] * p[1] for p in pieces)
    image = Image.new("RGBA", (max(round(width), 1) + 2, round(bottom - top) + 1))
    x = 1.0
    for font, scale, piece, run_top, run_bottom, advance in pieces:
        layer = Image.new("RGBA", (round(advance) + 2, round(run_bottom - run_top) + 1))
        ImageDraw.Draw(layer).text((1, -run_top), piece, font=font, fill=fill, anchor="ls", embedded_color=True,
                                   **ltr(font))
        if scale != 1.0:
            layer = layer.resize((max(round(layer.width * scale), 1), max(round(layer.height * scale), 1)),
                                 Image.Resampling.LANCZOS)
        image.alpha_composite(layer, (round(x) - 1, round(-top + run_top * scale)))
        x += advance * scale
    return image


def fit(text: str, width: int, size: int = 12) -> str:
    """``text``, shortened with "…" until it is at most ``width`` px wide."""
    if text_image(text, size).width <= width:
        return text
    chars = clusters(text)
    while chars and text_image("".join(chars) + "…", size).width > width:
        chars.pop()
    return "".join(chars) + "…"
