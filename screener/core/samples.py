"""Seeded, procedurally drawn images: sample works for the demo, tests and benchmarks.

Two families: flat "drawings" (shapes on a plain background, the clip-art case that makes
neural descriptors over-confident) and textured "scenes" (multi-scale noise with shapes,
closer to photographs). The same seed always draws the same picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, 3))
    return r, g, b


def _shapes(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, n: int) -> None:
    for _ in range(n):
        kind = int(rng.integers(0, 4))
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
        x1 = min(w - 1, x0 + int(rng.integers(w // 10, w // 2)))
        y1 = min(h - 1, y0 + int(rng.integers(h // 10, h // 2)))
        fill, outline = _colour(rng), _colour(rng)
        width = int(rng.integers(1, 6))
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill, outline=outline, width=width)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill, outline=outline, width=width)
        elif kind == 2:
            points = [
                (int(rng.integers(0, w)), int(rng.integers(0, h)))
                for _ in range(int(rng.integers(3, 7)))
            ]
            draw.polygon(points, fill=fill, outline=outline)
        else:
            points = [
                (int(rng.integers(0, w)), int(rng.integers(0, h)))
                for _ in range(int(rng.integers(2, 6)))
            ]
            draw.line(points, fill=fill, width=width + 2)


def drawing(
    seed: int, size: tuple[int, int] = (384, 384), transparent: bool = False
) -> Image.Image:
    """A flat drawing: shapes on a plain (or transparent) background. RGB, or RGBA."""
    rng = np.random.default_rng([seed, 1])
    w, h = size
    background: tuple[int, int, int, int] = (
        (0, 0, 0, 0)
        if transparent
        else (*((255, 255, 255) if rng.random() < 0.6 else _colour(rng)), 255)
    )
    image = Image.new("RGBA", size, background)
    draw = ImageDraw.Draw(image)
    # A figure in the middle, as in character art, then details around it.
    cx, cy = w // 2, h // 2
    rx, ry = int(w * rng.uniform(0.2, 0.35)), int(h * rng.uniform(0.25, 0.4))
    draw.ellipse(
        (cx - rx, cy - ry, cx + rx, cy + ry), fill=_colour(rng), outline=(0, 0, 0), width=3
    )
    _shapes(draw, rng, w, h, int(rng.integers(6, 14)))
    return image if transparent else image.convert("RGB")


def _noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    field = np.zeros((h, w, 3), dtype=np.float64)
    for octave in range(1, 6):
        cells = 2**octave
        small = rng.random((cells + 1, cells + 1, 3))
        layer = Image.fromarray((small * 255).astype(np.uint8)).resize(
            (w, h), Image.Resampling.BICUBIC
        )
        field += np.asarray(layer, dtype=np.float64) / (1.6**octave)
    field -= field.min()
    scaled: np.ndarray = field / max(field.max(), 1e-9)
    return scaled


def scene(seed: int, size: tuple[int, int] = (512, 384)) -> Image.Image:
    """A textured picture: coloured multi-scale noise with blurred shapes, photo-like."""
    rng = np.random.default_rng([seed, 2])
    w, h = size
    base = _noise(rng, w, h)
    tint = rng.uniform(0.4, 1.0, 3)
    image = Image.fromarray((base * tint * 255).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    _shapes(draw, rng, w, h, int(rng.integers(3, 8)))
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
