"""Generated characters for the semantic tests: one creature in many poses, and look-alikes.

A character is a fixed design (body and head colours, ear shape, a chest emblem, eye
style); a pose moves its limbs, tilts its head, scales and places it. A look-alike shares
the body plan (a creature of the same kind) but not the design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Design:
    body: RGB
    head: RGB
    ears: str  # "pointed", "round" or "long"
    emblem: str  # "star", "stripe" or "ring"
    emblem_colour: RGB
    eyes: RGB


MASCOT = Design((230, 120, 20), (250, 200, 60), "pointed", "star", (200, 20, 40), (20, 90, 200))
LOOKALIKE = Design((90, 90, 100), (160, 160, 170), "round", "stripe", (40, 40, 40), (30, 30, 30))
OTHER = Design((40, 150, 60), (120, 210, 120), "long", "ring", (250, 250, 250), (120, 20, 20))


def _limb(
    draw: ImageDraw.ImageDraw,
    x: float,
    y: float,
    angle: float,
    length: float,
    colour: RGB,
    width: int,
) -> None:
    end = (x + length * math.cos(angle), y + length * math.sin(angle))
    draw.line([(x, y), end], fill=colour, width=width)
    draw.ellipse((end[0] - width, end[1] - width, end[0] + width, end[1] + width), fill=colour)


def draw(
    design: Design, pose: int, size: int = 320, background: RGB = (255, 255, 255)
) -> Image.Image:
    """The character in pose ``pose`` (any int) on a plain background."""
    rng = np.random.default_rng([pose, 7])
    image = Image.new("RGB", (size, size), background)
    d = ImageDraw.Draw(image)
    scale = size / 320 * rng.uniform(0.8, 1.05)
    cx, cy = size / 2 + rng.uniform(-25, 25), size / 2 + rng.uniform(-10, 20)
    bw, bh = 55 * scale, 75 * scale
    outline = (20, 20, 20)
    for side in (-1, 1):  # arms and legs at the pose's angles
        arm = (0.0 if side > 0 else math.pi) + side * rng.uniform(-1.1, 1.1)
        _limb(d, cx + side * bw * 0.9, cy - bh * 0.3, arm, 55 * scale, design.body, int(12 * scale))
        leg = math.pi / 2 + side * rng.uniform(0.05, 0.8)
        _limb(
            d, cx + side * bw * 0.45, cy + bh * 0.8, leg, 55 * scale, design.body, int(14 * scale)
        )
    d.ellipse((cx - bw, cy - bh, cx + bw, cy + bh), fill=design.body, outline=outline, width=3)
    ex, ey, er = cx, cy + bh * 0.1, 20 * scale
    if design.emblem == "star":
        points = [
            (
                ex + er * math.cos(a) * (1 if i % 2 == 0 else 0.45),
                ey + er * math.sin(a) * (1 if i % 2 == 0 else 0.45),
            )
            for i, a in enumerate(np.linspace(-math.pi / 2, 1.5 * math.pi, 10, endpoint=False))
        ]
        d.polygon(points, fill=design.emblem_colour)
    elif design.emblem == "stripe":
        for k in (-1, 0, 1):
            d.line(
                [(cx - bw * 0.8, ey + k * 18 * scale), (cx + bw * 0.8, ey + k * 18 * scale)],
                fill=design.emblem_colour,
                width=int(6 * scale),
            )
    else:
        d.ellipse(
            (ex - er, ey - er, ex + er, ey + er), outline=design.emblem_colour, width=int(7 * scale)
        )
    tilt = rng.uniform(-0.35, 0.35)
    hx, hy, hr = cx + math.sin(tilt) * 80 * scale, cy - bh - 35 * scale, 48 * scale
    for side in (-1, 1):
        base = tilt + side * 0.6
        bx, by = hx + hr * math.sin(base), hy - hr * math.cos(base)
        if design.ears == "pointed":
            tip = (bx + 30 * scale * math.sin(base), by - 45 * scale * math.cos(base))
            d.polygon(
                [(bx - 16 * scale, by + 6 * scale), tip, (bx + 16 * scale, by + 6 * scale)],
                fill=design.head,
                outline=outline,
            )
        elif design.ears == "round":
            d.ellipse(
                (bx - 20 * scale, by - 20 * scale, bx + 20 * scale, by + 20 * scale),
                fill=design.head,
                outline=outline,
                width=3,
            )
        else:
            d.ellipse(
                (bx - 10 * scale, by - 60 * scale, bx + 10 * scale, by + 5 * scale),
                fill=design.head,
                outline=outline,
                width=3,
            )
    d.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=design.head, outline=outline, width=3)
    for side in (-1, 1):
        x = hx + side * 18 * scale + math.sin(tilt) * 5
        d.ellipse((x - 9 * scale, hy - 12 * scale, x + 9 * scale, hy + 8 * scale), fill=design.eyes)
    d.arc(
        (hx - 18 * scale, hy + 5 * scale, hx + 18 * scale, hy + 28 * scale),
        20,
        160,
        fill=outline,
        width=3,
    )
    return image


def on_scene(character: Image.Image, scene: Image.Image, share: float, seed: int) -> Image.Image:
    """``character`` (on white) pasted at ``share`` of ``scene``'s short side, white keyed
    out, at a place chosen by ``seed``."""
    rng = np.random.default_rng([seed, 11])
    side = int(min(scene.size) * share)
    small = character.resize((side, side), Image.Resampling.BILINEAR)
    mask = Image.fromarray(
        ((np.asarray(small, dtype=np.int16) < 240).any(axis=2) * 255).astype(np.uint8), "L"
    )
    out = scene.copy()
    x = int(rng.integers(0, scene.width - side + 1))
    y = int(rng.integers(0, scene.height - side + 1))
    out.paste(small, (x, y), mask)
    return out
