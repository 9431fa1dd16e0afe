"""The seeded transform suite: edits a generated copy of a work might carry.

Each transform takes the work (RGBA: transparent works keep their alpha so that they can
be composited onto new backgrounds) and a random generator, and returns an RGB image. The
category name is what the accuracy report groups by.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from screener.core import samples

Transform = Callable[[Image.Image, np.random.Generator], Image.Image]
WHITE = (255, 255, 255)


def flat(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """The work as a reference shows it: alpha over white."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    canvas = Image.new("RGB", image.size, background)
    canvas.paste(image, mask=image.getchannel("A"))
    return canvas


def _jpeg(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    buffer = io.BytesIO()
    flat(image).save(buffer, "JPEG", quality=int(rng.integers(15, 50)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _resize(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    scale = float(rng.choice([0.35, 0.5, 0.7, 1.6]))
    w, h = image.size
    return flat(image).resize((max(16, round(w * scale)), max(16, round(h * scale))))


def _down_up(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    factor = float(rng.uniform(0.15, 0.3))
    small = flat(image).resize((max(8, round(w * factor)), max(8, round(h * factor))))
    return small.resize((w, h), Image.Resampling.BICUBIC)


def _blur(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return flat(image).filter(ImageFilter.GaussianBlur(float(rng.uniform(1.5, 3.5))))


def _noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(flat(image), dtype=np.float64)
    noisy = pixels + rng.normal(0, float(rng.uniform(12, 30)), pixels.shape)
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def _colour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = ImageEnhance.Color(flat(image)).enhance(float(rng.uniform(0.3, 2.0)))
    out = ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.7, 1.3)))
    pixels = np.asarray(out, dtype=np.int16)
    shift = rng.integers(-40, 41, 3)
    return Image.fromarray((pixels + shift).clip(0, 255).astype(np.uint8))


def _gray(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.grayscale(flat(image)).convert("RGB")


def _flip(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(flat(image)) if rng.random() < 0.7 else ImageOps.flip(flat(image))


def _rotate_small(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    angle = float(rng.uniform(4, 15)) * (1 if rng.random() < 0.5 else -1)
    return flat(image).rotate(
        angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE
    )


def _rotate_90(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    ops = [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270]
    return flat(image).transpose(ops[int(rng.integers(0, 3))])


def _crop_centre(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    keep = float(rng.uniform(0.5, 0.8))  # share of each side kept
    w, h = image.size
    cw, ch = round(w * keep), round(h * keep)
    x, y = (w - cw) // 2, (h - ch) // 2
    return flat(image).crop((x, y, x + cw, y + ch))


def _crop_offset(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    keep = float(rng.uniform(0.5, 0.8))
    w, h = image.size
    cw, ch = round(w * keep), round(h * keep)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return flat(image).crop((x, y, x + cw, y + ch))


def _pad(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, _h = image.size
    pad = [int(rng.integers(w // 10, w // 2)) for _ in range(4)]
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    return ImageOps.expand(flat(image), border=tuple(pad), fill=colour)


def _overlay(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = flat(image)
    draw = ImageDraw.Draw(out, "RGBA")
    w, h = out.size
    for _ in range(int(rng.integers(2, 5))):
        x, y = int(rng.integers(0, max(1, w - 60))), int(rng.integers(0, max(1, h - 12)))
        alpha = int(rng.integers(120, 255))
        draw.text((x, y), "AI GENERATED  sample", fill=(255, 255, 255, alpha))
        draw.text((x + 1, y + 1), "AI GENERATED  sample", fill=(0, 0, 0, alpha))
    return out


def _perspective(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    j = 0.12
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(x + float(rng.uniform(-j, j)) * w, y + float(rng.uniform(-j, j)) * h) for x, y in src]
    coeffs = _perspective_coeffs(dst, src)
    return flat(image).transform(
        (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC, fillcolor=WHITE
    )


def _perspective_coeffs(
    target: list[tuple[float, float]], source: list[tuple[int, int]]
) -> tuple[float, ...]:
    rows = []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.asarray(rows, dtype=np.float64)
    b = np.asarray(source, dtype=np.float64).reshape(8)
    return tuple(float(c) for c in np.linalg.solve(a, b))


def _style(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    base = flat(image)
    if rng.random() < 0.5:
        return ImageOps.posterize(base, int(rng.integers(2, 4)))
    return base.filter(ImageFilter.EDGE_ENHANCE_MORE)


def _background(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    seed = int(rng.integers(0, 2**31))
    return samples.scene(seed, size=size)


def _composite(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    scale = float(rng.uniform(1.4, 2.0))
    canvas = _background(rng, (round(w * scale), round(h * scale)))
    x = int(rng.integers(0, canvas.width - w + 1))
    y = int(rng.integers(0, canvas.height - h + 1))
    mask = image.getchannel("A") if image.mode == "RGBA" else None
    canvas.paste(image.convert("RGB"), (x, y), mask)
    return canvas


def _collage(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = image.size
    canvas = Image.new("RGB", (2 * w, 2 * h), WHITE)
    slot = int(rng.integers(0, 4))
    for i in range(4):
        x, y = (i % 2) * w, (i // 2) * h
        tile = flat(image) if i == slot else _background(rng, (w, h))
        canvas.paste(tile, (x, y))
    return canvas


TRANSFORMS: dict[str, Transform] = {
    "jpeg": _jpeg,
    "resize": _resize,
    "down_up": _down_up,
    "blur": _blur,
    "noise": _noise,
    "colour": _colour,
    "grayscale": _gray,
    "flip": _flip,
    "rotate_small": _rotate_small,
    "rotate_90": _rotate_90,
    "crop_centre": _crop_centre,
    "crop_offset": _crop_offset,
    "pad": _pad,
    "overlay": _overlay,
    "perspective": _perspective,
    "style": _style,
    "composite": _composite,
    "collage": _collage,
}

# Edits that keep the whole work in view, in place: the "copy-level edits" of the goal.
# Crops, padding, small rotations, perspective, composites and collages move or cut the
# work; they are the partial and geometric copies that local features are for.
COPY_LEVEL = frozenset(TRANSFORMS) - {
    "crop_centre",
    "crop_offset",
    "pad",
    "rotate_small",
    "perspective",
    "composite",
    "collage",
}
