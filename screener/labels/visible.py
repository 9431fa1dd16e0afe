"""The explicit label: a banner with text at least 5% of the image's shortest side (GB
45438-2025), drawn in a font that has the glyphs, found at the usual places or by fc-list."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from PIL import Image, ImageDraw, ImageFont

from screener.core.errors import LabelError
from screener.core.text import check_text

MAX_VISIBLE_TEXT: Final = 100
MIN_TEXT_PX: Final = 12
TEXT_FRACTION: Final = 0.05  # of the shortest side (GB 45438-2025)
# Fonts with CJK glyphs at their usual places (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
_CJK_FONT_PATHS: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansSC-Regular.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/simsun.ttc",
)
_CJK_PROBE: Final = "AI生成"
_DEFAULT_CJK_TEXT: Final = "AI生成 / AI-generated"
_DEFAULT_ASCII_TEXT: Final = "AI-generated"
_DEFAULT_FONT_NAME: Final = "Pillow default font"


@dataclass(frozen=True)
class _FontChoice:
    name: str  # what Labelled.visible_font says
    path: str | None  # None: Pillow's built-in font
    index: int = 0


def _check_visible_text(text: object) -> None:
    check_text("visible_text", text, MAX_VISIBLE_TEXT, allow="\n", error=LabelError)


def _load_font(choice: _FontChoice, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if choice.path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(choice.path, size, index=choice.index)


def _ink(
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str
) -> tuple[tuple[int, ...], bytes]:
    bbox = tuple(int(v) for v in font.getbbox(text))
    width, height = max(1, bbox[2] - bbox[0]), max(1, bbox[3] - bbox[1])
    canvas = Image.new("L", (width, height))
    ImageDraw.Draw(canvas).text((-bbox[0], -bbox[1]), text, font=font, fill=255)
    return bbox, canvas.tobytes()


def _covers(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> bool:
    """Whether ``font`` has a glyph for every visible character of ``text``.

    A missing glyph draws as the font's "notdef" glyph, the same as a private-use character.
    """
    try:
        missing = _ink(font, "\U000f0000")
        for ch in set(text):
            if ch.isspace():
                continue
            drawn = _ink(font, ch)
            if drawn == missing or not any(drawn[1]):
                return False
    except (OSError, UnicodeEncodeError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def find_cjk_font() -> tuple[str, int] | None:
    """The path and face index of an installed font that draws "AI生成"; None if none."""
    candidates = [p for p in _CJK_FONT_PATHS if os.path.isfile(p)]
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            listed = subprocess.run(
                [fc_list, ":lang=zh", "--format=%{file}\\n"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            listed = []
        candidates += sorted({p.strip() for p in listed if p.strip()} - set(candidates))
    for path in candidates:
        found = _cjk_face(path)
        if found is not None:
            return path, found
    return None


def _cjk_face(path: str) -> int | None:
    """The face of ``path`` to use (Simplified Chinese preferred in a collection)."""
    covering: list[int] = []
    for index in range(10 if path.lower().endswith((".ttc", ".otc")) else 1):
        try:
            font = ImageFont.truetype(path, 24, index=index)
        except OSError:
            break
        if _covers(font, _CJK_PROBE):
            family = str(font.getname()[0] or "")
            if re.search(r"\bSC\b|GB|Simplified|Hei|Sans CJK SC", family):
                return index
            covering.append(index)
    return covering[0] if covering else None


def _font_choices(font_path: str | os.PathLike[str] | None) -> list[_FontChoice]:
    if font_path is not None:
        path = os.fspath(font_path)
        return [_FontChoice(path, path)]
    choices = []
    cjk = find_cjk_font()
    if cjk is not None:
        choices.append(_FontChoice(cjk[0], cjk[0], cjk[1]))
    default = ImageFont.load_default(MIN_TEXT_PX)
    if isinstance(default, ImageFont.FreeTypeFont):
        family, style = default.getname()
        name = f"{_DEFAULT_FONT_NAME} ({family} {style})"
    else:
        name = f"{_DEFAULT_FONT_NAME} (bitmap)"
    choices.append(_FontChoice(name, None))
    return choices


def _pick_font(
    text: str | None, font_path: str | os.PathLike[str] | None
) -> tuple[_FontChoice, str]:
    for choice in _font_choices(font_path):
        try:
            probe = _load_font(choice, 24)
        except OSError as exc:
            raise LabelError(f"The font {choice.name} cannot be loaded.") from exc
        if text is None:
            if _covers(probe, _CJK_PROBE):
                return choice, _DEFAULT_CJK_TEXT
            if choice.path is None or font_path is not None:
                return choice, _DEFAULT_ASCII_TEXT
        elif _covers(probe, text):
            return choice, text
    raise LabelError(
        "No available font can draw the visible label text; install a font with those "
        "characters or pass font_path."
    )


def _glyph_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> int:
    heights = [0]
    for ch in set(text):
        if not ch.isspace():
            bbox = font.getbbox(ch)
            heights.append(int(bbox[3] - bbox[1]))
    return max(heights)


def _text_mask(choice: _FontChoice, text: str, target: int, max_width: int) -> Image.Image:
    """The text drawn white on black, glyphs at least ``target`` px tall where it fits."""
    layouts = [text]
    if " / " in text:
        layouts.append(text.replace(" / ", "\n"))
    size = target
    font = _load_font(choice, size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # no FreeType: scale the bitmap font
        return _bitmap_mask(font, layouts, target, max_width)
    for _ in range(8):
        height = _glyph_height(font, text)
        if height >= target:
            break
        size = max(size + 1, math.ceil(size * target / max(height, 1)))
        font = _load_font(choice, size)
    while True:
        for layout in layouts:
            mask = _render(font, layout)
            if mask.width <= max_width:
                return mask
        widest = _render(font, layouts[-1]).width
        smaller = min(size - 1, math.floor(size * max_width / widest))
        if smaller < 6:
            raise LabelError("The image is too small for a visible label.")
        size = smaller
        font = _load_font(choice, size)


def _render(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> Image.Image:
    scratch = ImageDraw.Draw(Image.new("L", (1, 1)))
    spacing = max(2, round(_glyph_height(font, text) * 0.25))
    left, top, right, bottom = (
        int(v) for v in scratch.multiline_textbbox((0, 0), text, font=font, spacing=spacing)
    )
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(mask).multiline_text((-left, -top), text, font=font, fill=255, spacing=spacing)
    return mask


def _bitmap_mask(
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    layouts: list[str],
    target: int,
    max_width: int,
) -> Image.Image:
    factor = max(1, math.ceil(target / max(1, _glyph_height(font, layouts[0]))))
    while True:
        for layout in layouts:
            mask = _render(font, layout)
            if mask.width * factor <= max_width:
                return mask.resize(
                    (mask.width * factor, mask.height * factor), Image.Resampling.NEAREST
                )
        if factor == 1:
            raise LabelError("The image is too small for a visible label.")
        factor -= 1


def _draw_banner(
    image: Image.Image, text: str | None, font_path: str | os.PathLike[str] | None
) -> tuple[Image.Image, str, tuple[int, int, int, int]]:
    width, height = image.size
    short = min(width, height)
    target = max(MIN_TEXT_PX, math.ceil(short * TEXT_FRACTION))
    pad = max(4, round(short * 0.02))
    inner = max(3, round(target * 0.35))
    choice, text = _pick_font(text, font_path)
    mask = _text_mask(choice, text, target, width - 2 * pad - 2 * inner)
    box_w, box_h = mask.width + 2 * inner, mask.height + 2 * inner
    if box_h + 2 * pad > height:
        raise LabelError(f"The image ({width}x{height}) is too small for a visible label.")
    left, top = pad, height - pad - box_h
    box = (left, top, left + box_w, top + box_h)
    overlay = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 150))
    overlay.paste((255, 255, 255, 235), (inner, inner), mask)
    region = Image.alpha_composite(image.crop(box).convert("RGBA"), overlay)
    out = image.copy()
    out.paste(region.convert(image.mode), box[:2])
    return out, choice.name, box
