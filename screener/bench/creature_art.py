"""Creatures drawn in code for the character suite: four species (the kin), each creature
its own colours, markings and proportions, drawn in any pose and in two styles. Needs no
package, so tests and a first run of ``screener bench characters`` need nothing installed;
`characters_data.creatures` makes them into characters."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SPECIES = ("cat", "bird", "blob", "bug")


@dataclass(frozen=True)
class Look:
    """What makes one creature itself: its species' outline, colours and markings."""

    species: str
    body: tuple[int, int, int]
    belly: tuple[int, int, int]
    eye: tuple[int, int, int]
    marking: int  # 0 none, 1 stripes, 2 spots, 3 a star on the chest
    stretch: float  # body width over height


def look_of(species: str, identity: int) -> Look:
    rng = np.random.default_rng([SPECIES.index(species), identity, 7])

    def colour() -> tuple[int, int, int]:
        r, g, b = (int(v) for v in rng.integers(20, 236, size=3))
        return r, g, b

    return Look(
        species, colour(), colour(), colour(), int(rng.integers(0, 4)), float(rng.uniform(0.7, 1.4))
    )


def draw_creature(look: Look, pose: int, style: str = "flat", side: int = 256) -> Image.Image:
    """The creature in one pose (limb angles, head tilt and gaze come from ``pose``).

    ``style`` "flat" is the reference artist's (filled shapes); "outline" is another hand:
    thick dark outlines, pale fills and square eyes."""
    rng = np.random.default_rng([pose, 11])
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    outline = style == "outline"
    ink = (30, 30, 30, 255)
    width = max(2, side // 40) if outline else 0

    def fill(rgb: tuple[int, int, int]) -> tuple[int, int, int, int]:
        if outline:
            r, g, b = (int(c + (255 - c) * 0.6) for c in rgb)
            return r, g, b, 255
        return (*rgb, 255)

    cx, cy = side * 0.5, side * 0.6
    bh = side * 0.22
    bw = bh * look.stretch
    limb = side * 0.2
    for k, base_angle in enumerate((200.0, 340.0, 250.0, 290.0)):
        angle = math.radians(base_angle + float(rng.uniform(-35, 35)))
        x0 = cx + (bw * 0.6 if k % 2 else -bw * 0.6) * (0.4 if k >= 2 else 1.0)
        y0 = cy + (bh * 0.5 if k >= 2 else 0.0)
        x1, y1 = x0 + limb * math.cos(angle), y0 - limb * math.sin(angle)
        draw.line((x0, y0, x1, y1), fill=ink if outline else fill(look.body), width=side // 22)
        draw.ellipse(
            (x1 - side * 0.03, y1 - side * 0.03, x1 + side * 0.03, y1 + side * 0.03),
            fill=fill(look.belly),
        )
    draw.ellipse(
        (cx - bw, cy - bh, cx + bw, cy + bh), fill=fill(look.body), outline=ink, width=width
    )
    draw.ellipse(
        (cx - bw * 0.5, cy - bh * 0.3, cx + bw * 0.5, cy + bh * 0.8), fill=fill(look.belly)
    )
    _marking(draw, look, cx, cy, bw, bh, fill)
    tilt = float(rng.uniform(-0.25, 0.25))
    hx, hy, hr = cx + tilt * side * 0.3, cy - bh - side * 0.12, side * 0.14
    _ears(draw, look.species, hx, hy, hr, fill(look.body), ink, width)
    draw.ellipse(
        (hx - hr, hy - hr, hx + hr, hy + hr), fill=fill(look.body), outline=ink, width=width
    )
    gaze = float(rng.uniform(-0.3, 0.3)) * hr
    for dx in (-0.4, 0.4):
        ex, ey, er = hx + dx * hr + gaze, hy - 0.1 * hr, hr * 0.22
        shape = draw.rectangle if outline else draw.ellipse
        shape((ex - er, ey - er, ex + er, ey + er), fill=(*look.eye, 255), outline=ink, width=2)
    box = image.getchannel("A").getbbox()
    return image.crop(box) if box else image


def _marking(
    draw: ImageDraw.ImageDraw,
    look: Look,
    cx: float,
    cy: float,
    bw: float,
    bh: float,
    fill: Callable[[tuple[int, int, int]], tuple[int, int, int, int]],
) -> None:
    dark = fill(tuple(c // 2 for c in look.body))  # type: ignore[arg-type]
    if look.marking == 1:
        for k in (-0.5, 0.0, 0.5):
            draw.line(
                (cx + k * bw, cy - bh * 0.9, cx + k * bw * 1.2, cy + bh * 0.2),
                fill=dark,
                width=int(bh * 0.15),
            )
    elif look.marking == 2:
        for k in (-0.6, 0.1, 0.55):
            r = bh * 0.14
            draw.ellipse(
                (cx + k * bw - r, cy - bh * 0.5 - r, cx + k * bw + r, cy - bh * 0.5 + r), fill=dark
            )
    elif look.marking == 3:
        r = bh * 0.3
        points = [
            (
                cx + r * (1 if i % 2 == 0 else 0.45) * math.sin(i * math.pi / 5),
                cy - r * (1 if i % 2 == 0 else 0.45) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
        draw.polygon(points, fill=dark)


def _ears(
    draw: ImageDraw.ImageDraw,
    species: str,
    hx: float,
    hy: float,
    hr: float,
    colour: tuple[int, int, int, int],
    ink: tuple[int, int, int, int],
    width: int,
) -> None:
    if species == "cat":
        for s in (-1, 1):
            draw.polygon(
                [
                    (hx + s * hr * 0.9, hy - hr * 0.2),
                    (hx + s * hr * 0.7, hy - hr * 1.6),
                    (hx + s * hr * 0.1, hy - hr * 0.8),
                ],
                fill=colour,
                outline=ink,
            )
    elif species == "bird":
        draw.polygon(
            [(hx + hr * 0.8, hy), (hx + hr * 1.7, hy + hr * 0.2), (hx + hr * 0.8, hy + hr * 0.4)],
            fill=(240, 180, 30, 255),
            outline=ink,
        )
        draw.ellipse(
            (hx - hr * 0.3, hy - hr * 1.5, hx + hr * 0.3, hy - hr * 0.7),
            fill=colour,
            outline=ink,
            width=width,
        )
    elif species == "bug":
        for s in (-1, 1):
            draw.line(
                (hx + s * hr * 0.3, hy - hr * 0.8, hx + s * hr * 0.9, hy - hr * 1.8),
                fill=ink,
                width=max(2, int(hr * 0.12)),
            )
            draw.ellipse(
                (
                    hx + s * hr * 0.9 - hr * 0.18,
                    hy - hr * 1.98,
                    hx + s * hr * 0.9 + hr * 0.18,
                    hy - hr * 1.62,
                ),
                fill=colour,
            )
