"""The 24 edit categories of the multi-domain suite (issue 21), at generator output sizes.

Each edit takes the work (RGBA, up to 512 px), a seeded generator, the query's longer
side (256-512 px, drawn per query: generators output such sizes) and the domain's
distractor images (the other three tiles of a collage come from them, so a collage never
holds a second registered work). It returns an RGB image whose longer side is that size,
except ``resize_half``, which halves it. Edits shared with `screener.bench.transforms` reuse
its helpers; the ranges here are the issue's.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from screener.bench.transforms import WHITE, _perspective_coeffs, flat
from screener.core import samples

Edit = Callable[[Image.Image, np.random.Generator, int, Sequence[Image.Image]], Image.Image]
MIN_SIDE, MAX_SIDE = 256, 512


def query_side(rng: np.random.Generator) -> int:
    """A generator's output size: the longer side, 256 to 512 px."""
    return int(rng.integers(MIN_SIDE, MAX_SIDE + 1))


def sized(image: Image.Image, side: int) -> Image.Image:
    """``image`` scaled so that its longer side is ``side``."""
    w, h = image.size
    scale = side / max(w, h)
    return image.resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS
    )


def _base(work: Image.Image, side: int) -> Image.Image:
    return sized(flat(work), side)


def _clean(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    return _base(work, side)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _jpeg_q30(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    return _jpeg(_base(work, side), 30)


def _resize_half(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    return sized(flat(work), side // 2)


def _down_up(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    image = _base(work, side)
    small = sized(image, max(8, round(side / float(rng.uniform(4.0, 6.0)))))
    return small.resize(image.size, Image.Resampling.BICUBIC)


def _blur(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    return _base(work, side).filter(ImageFilter.GaussianBlur(float(rng.uniform(2.5, 4.0))))


def _noise(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    pixels = np.asarray(_base(work, side), dtype=np.float64)
    noisy = pixels + rng.normal(0.0, float(rng.uniform(10.0, 20.0)), pixels.shape)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def _brightness_contrast(
    work: Image.Image, rng: np.random.Generator, side: int, _: object
) -> Image.Image:
    out = ImageEnhance.Brightness(_base(work, side)).enhance(float(rng.uniform(0.6, 1.4)))
    return ImageEnhance.Contrast(out).enhance(float(rng.uniform(0.6, 1.4)))


def _hue_shift(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    degrees = float(rng.uniform(45.0, 135.0)) * (1 if rng.random() < 0.5 else -1)
    hsv = np.asarray(_base(work, side).convert("HSV"), dtype=np.int16)
    hsv[..., 0] = (hsv[..., 0] + round(degrees / 360.0 * 256)) % 256
    return Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")


def _grayscale(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    return ImageOps.grayscale(_base(work, side)).convert("RGB")


def _posterize(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    return ImageOps.posterize(_base(work, side), int(rng.integers(2, 4)))


def _hflip(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    return ImageOps.mirror(_base(work, side))


def _rotate(image: Image.Image, degrees: float, side: int) -> Image.Image:
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE)
    return sized(turned, side)


def _rotation(low: float, high: float) -> Edit:
    def edit(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
        degrees = float(rng.uniform(low, high)) * (1 if rng.random() < 0.5 else -1)
        return _rotate(_base(work, side), degrees, side)

    return edit


def _rotate_90(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    ops = [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270]
    return _base(work, side).transpose(ops[int(rng.integers(0, 3))])


def _crop(image: Image.Image, keep: float, x_share: float, y_share: float) -> Image.Image:
    """A window ``keep`` of each side, placed at the given shares of the free room."""
    w, h = image.size
    cw, ch = max(8, round(w * keep)), max(8, round(h * keep))
    x, y = round((w - cw) * x_share), round((h - ch) * y_share)
    return image.crop((x, y, x + cw, y + ch))


def _centre_crop(keep: float) -> Edit:
    def edit(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
        return sized(_crop(flat(work), keep, 0.5, 0.5), side)

    return edit


def _crop_offset(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    keep = float(rng.uniform(0.60, 0.75))
    x, y = float(rng.random()), float(rng.random())
    return sized(_crop(flat(work), keep, x, y), side)


def _pad_border(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    image = flat(work)
    w = max(image.size)
    pad = tuple(int(rng.integers(w // 10, w // 2)) for _ in range(4))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    return sized(ImageOps.expand(image, border=pad, fill=colour), side)


def _perspective(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    image = _base(work, side)
    w, h = image.size
    jitter = 0.12
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    moved = [
        (x + float(rng.uniform(-jitter, jitter)) * w, y + float(rng.uniform(-jitter, jitter)) * h)
        for x, y in corners
    ]
    coeffs = _perspective_coeffs(moved, corners)
    return image.transform(
        (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=WHITE
    )


CAPTIONS = ("AI generated", "made with a generator", "sample output", "draft 2", "preview")


def _text_overlay(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    """A caption band across the bottom, or a tiled translucent watermark."""
    image = _base(work, side)
    w, h = image.size
    caption = CAPTIONS[int(rng.integers(0, len(CAPTIONS)))]
    if rng.random() < 0.5:
        band = max(16, round(h * float(rng.uniform(0.12, 0.2))))
        font = ImageFont.load_default(size=max(10, band * 3 // 5))
        canvas = Image.new("RGB", (w, h + band), (0, 0, 0) if rng.random() < 0.5 else WHITE)
        canvas.paste(image, (0, 0))
        ink = (255, 255, 255) if canvas.getpixel((0, h)) == (0, 0, 0) else (0, 0, 0)
        ImageDraw.Draw(canvas).text((band // 3, h + band // 5), caption, fill=ink, font=font)
        return sized(canvas, side)
    font = ImageFont.load_default(size=max(10, side // 16))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    alpha = int(rng.integers(70, 130))
    step_x, step_y = max(40, w // 2), max(24, h // 5)
    for row, y in enumerate(range(-step_y // 2, h, step_y)):
        for x in range(-(row % 2) * step_x // 2, w, step_x):
            draw.text((x, y), caption, fill=(255, 255, 255, alpha), font=font)
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def _photo(rng: np.random.Generator, side: int) -> Image.Image:
    """A new photograph-like background (generated: no domain's images)."""
    aspect = float(rng.uniform(0.75, 1.33))
    w, h = (side, round(side / aspect)) if aspect >= 1 else (round(side * aspect), side)
    return samples.scene(int(rng.integers(0, 2**31)), size=(w, h))


def _composite(low: float, high: float) -> Edit:
    """The work, ``low`` to ``high`` of the new photo's shorter side, pasted into it."""

    def edit(
        work: Image.Image, rng: np.random.Generator, side: int, _: Sequence[Image.Image]
    ) -> Image.Image:
        canvas = _photo(rng, side)
        share = float(rng.uniform(low, high))
        piece = work.convert("RGBA")
        piece = sized(piece, max(8, round(min(canvas.size) * share)))
        x = int(rng.integers(0, canvas.width - piece.width + 1))
        y = int(rng.integers(0, canvas.height - piece.height + 1))
        canvas.paste(piece.convert("RGB"), (x, y), piece.getchannel("A"))
        return canvas

    return edit


def _collage_2x2(
    work: Image.Image, rng: np.random.Generator, side: int, others: Sequence[Image.Image]
) -> Image.Image:
    """The work in one tile of a 2x2 grid; the other three tiles are distractors."""
    if len(others) < 3:
        raise ValueError("a collage needs at least three distractor images in the domain")
    tile = side // 2
    picks = rng.choice(len(others), size=3, replace=False)
    tiles = [flat(others[int(i)]) for i in picks]
    slot = int(rng.integers(0, 4))
    tiles.insert(slot, flat(work))
    canvas = Image.new("RGB", (2 * tile, 2 * tile), WHITE)
    for i, image in enumerate(tiles):
        fitted = sized(image, tile)
        x = (i % 2) * tile + (tile - fitted.width) // 2
        y = (i // 2) * tile + (tile - fitted.height) // 2
        canvas.paste(fitted, (x, y))
    return canvas


MILD: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "jpeg": lambda im, rng: _jpeg(im, int(rng.integers(50, 71))),
    "brightness": lambda im, rng: ImageEnhance.Brightness(im).enhance(
        float(rng.uniform(0.85, 1.15))
    ),
    "crop": lambda im, rng: _crop(im, float(rng.uniform(0.85, 0.95)), rng.random(), rng.random()),
    "rotate": lambda im, rng: im.rotate(
        float(rng.uniform(-3, 3)), Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE
    ),
    "blur": lambda im, rng: im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 1.5)))),
    "saturation": lambda im, rng: ImageEnhance.Color(im).enhance(float(rng.uniform(0.7, 1.3))),
}


def _combo(work: Image.Image, rng: np.random.Generator, side: int, _: object) -> Image.Image:
    """Three mild edits, drawn per query, in a fixed order (geometry first, JPEG last)."""
    names = list(MILD)
    chosen = {names[int(i)] for i in rng.choice(len(names), size=3, replace=False)}
    image = _base(work, side)
    for name in ("crop", "rotate", "brightness", "saturation", "blur", "jpeg"):
        if name in chosen:
            image = MILD[name](image, rng)
    return sized(image, side) if max(image.size) != side else image


CATEGORIES: dict[str, Edit] = {
    "clean": _clean,
    "jpeg_q30": _jpeg_q30,
    "resize_half": _resize_half,
    "down_up": _down_up,
    "blur": _blur,
    "noise": _noise,
    "brightness_contrast": _brightness_contrast,
    "hue_shift": _hue_shift,
    "grayscale": _grayscale,
    "posterize": _posterize,
    "hflip": _hflip,
    "rotate_5": _rotation(4.0, 6.0),
    "rotate_15": _rotation(13.0, 17.0),
    "rotate_90": _rotate_90,
    "crop_center_70": _centre_crop(0.70),
    "crop_center_50": _centre_crop(0.50),
    "crop_offset": _crop_offset,
    "pad_border": _pad_border,
    "perspective": _perspective,
    "text_overlay": _text_overlay,
    "composite_medium": _composite(0.45, 0.65),
    "composite_small": _composite(0.25, 0.35),
    "collage_2x2": _collage_2x2,
    "combo": _combo,
}
