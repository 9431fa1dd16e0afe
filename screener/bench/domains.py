"""The visual domains of the multi-domain suite, and their families.

A domain is a folder set of one kind of picture (icons, photographs, game art) or a set
of fonts from which badge-style logos are drawn in code. Every source image belongs to a
family: the folder it sits in below the domain's folder (an icon theme's ``apps``, a
game's ``portraits/elves``), or for logos the brand style (shape, colours, font) it was
drawn in. A distractor from a family that holds a registered work is a same-family
look-alike; the report counts those apart, since they are the hard negatives.

A domain is named on the command line as ``NAME=FOLDER[,FOLDER...]``, or
``NAME=fonts:FOLDER[,FOLDER...]`` for logos drawn from the fonts in those folders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from screener.cli import IMAGE_SUFFIXES, images_in

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
FONT_SUFFIXES = (".ttf", ".otf")


@dataclass(frozen=True)
class Domain:
    name: str
    folders: tuple[Path, ...]
    fonts: bool = False  # True: the folders hold fonts, and the images are drawn logos


@dataclass(frozen=True)
class Source:
    path: Path
    family: str


def parse(spec: str) -> Domain:
    """``NAME=FOLDER[,FOLDER...]`` or ``NAME=fonts:FOLDER[,...]``; a clear error if wrong."""
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not rest.strip():
        raise ValueError(f"--domain {spec!r}: write NAME=FOLDER[,FOLDER...]")
    if not NAME.match(name):
        raise ValueError(
            f"--domain {spec!r}: the name must be lower-case letters, digits and _ "
            "(it is part of every query id)"
        )
    fonts = rest.startswith("fonts:")
    folders = tuple(Path(p) for p in rest.removeprefix("fonts:").split(",") if p)
    missing = [str(p) for p in folders if not p.is_dir()]
    if missing:
        raise ValueError(
            f"--domain {name}: no such folder: {', '.join(missing)} "
            "(benchmarks/README.md gives the apt-get commands that fetch the Debian packages)"
        )
    return Domain(name, folders, fonts)


def check_distinct(domains: Sequence[Domain]) -> None:
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise ValueError(f"domain names must differ: {names}")
    if len(domains) < 2:
        raise ValueError("leave-one-domain-out needs at least two domains")


def sources(domain: Domain, scratch: Path, seed: int, count: int) -> list[Source]:
    """The domain's source images with their families: the files in its folders (each
    file once), or ``count`` logos drawn into ``scratch``."""
    if domain.fonts:
        return draw_logos(_fonts(domain), scratch / domain.name, seed, count)
    found: list[Source] = []
    seen: set[Path] = set()
    for folder in domain.folders:
        for path in images_in([folder]):
            real = path.resolve()
            if real in seen:
                continue  # icon themes link one file under many names
            seen.add(real)
            family = path.parent.relative_to(folder).as_posix()
            found.append(Source(path, f"{folder.parent.name}/{folder.name}/{family}"))
    if not found:
        named = ", ".join(str(f) for f in domain.folders)
        raise ValueError(
            f"domain {domain.name}: {named} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return found


def _fonts(domain: Domain) -> list[Path]:
    fonts = sorted(
        p for f in domain.folders for p in f.rglob("*") if p.suffix.lower() in FONT_SUFFIXES
    )
    if not fonts:
        named = ", ".join(str(f) for f in domain.folders)
        raise ValueError(f"domain {domain.name}: no .ttf or .otf fonts in {named}")
    return fonts


# logos ---------------------------------------------------------------------------------

SHAPES = ("circle", "rounded", "shield", "hexagon", "diamond", "banner")
MEMBERS = 4  # logos drawn per brand style: one may be registered, the rest look alike
SYLLABLES = (
    "ka", "lo", "mi", "ra", "tek", "vo", "zen", "qu", "sol", "ar", "nex", "bri", "do", "fy",
    "gal", "hu", "ion", "ju", "ly", "mo", "ny", "or", "pax", "ri", "sy", "tor", "um", "vi",
)  # fmt: skip


@dataclass(frozen=True)
class Style:
    """A brand family: what every logo of one brand shares."""

    shape: str
    fill: tuple[int, int, int]
    ring: tuple[int, int, int]
    ink: tuple[int, int, int]
    font: Path
    emblem: int  # 0 none, 1 star, 2 stripe, 3 dots
    word_below: bool


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(c) for c in rng.integers(0, 256, 3))
    return r, g, b


def _style(rng: np.random.Generator, fonts: Sequence[Path]) -> Style:
    fill = _colour(rng)
    light = sum(fill) > 380
    ink = (20, 20, 30) if light else (250, 250, 245)
    return Style(
        shape=SHAPES[int(rng.integers(0, len(SHAPES)))],
        fill=fill,
        ring=_colour(rng),
        ink=ink,
        font=fonts[int(rng.integers(0, len(fonts)))],
        emblem=int(rng.integers(0, 4)),
        word_below=bool(rng.random() < 0.5),
    )


def _word(rng: np.random.Generator) -> str:
    return "".join(SYLLABLES[int(i)] for i in rng.integers(0, len(SYLLABLES), 2)).upper()


def _outline(shape: str, box: tuple[int, int, int, int]) -> list[tuple[float, float]] | None:
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    if shape == "hexagon":
        angles = np.radians(np.arange(6) * 60 + 30)
        return [(cx + rx * float(np.cos(a)), cy + ry * float(np.sin(a))) for a in angles]
    if shape == "diamond":
        return [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    if shape == "shield":
        return [(x0, y0), (x1, y0), (x1, cy), (cx, y1), (x0, cy)]
    if shape == "banner":
        return [(x0, y0 + ry / 2), (x1, y0 + ry / 2), (x1 - rx / 5, cy), (x1, y1 - ry / 2),
                (x0, y1 - ry / 2), (x0 + rx / 5, cy)]  # fmt: skip
    return None


def _initials(word: str) -> str:
    return word[:2]


def draw_logo(style: Style, word: str, size: int = 384) -> Image.Image:
    """A badge in ``style`` carrying ``word`` (its initials inside, the word below when the
    style says so), on a transparent background."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    badge_bottom = int(size * (0.72 if style.word_below else 0.94))
    box = (int(size * 0.06), int(size * 0.04), int(size * 0.94), badge_bottom)
    width = max(4, size // 40)
    points = _outline(style.shape, box)
    if points is not None:
        draw.polygon(points, fill=style.fill, outline=style.ring, width=width)
    elif style.shape == "circle":
        draw.ellipse(box, fill=style.fill, outline=style.ring, width=width)
    else:
        draw.rounded_rectangle(
            box, radius=size // 8, fill=style.fill, outline=style.ring, width=width
        )
    cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
    if style.emblem == 1:
        r = size // 14
        star = [
            (cx + (r if i % 2 == 0 else r / 2.5) * float(np.cos(a)),
             box[1] + 2.2 * r + (r if i % 2 == 0 else r / 2.5) * float(np.sin(a)))
            for i, a in enumerate(np.radians(np.arange(10) * 36 - 90))
        ]  # fmt: skip
        draw.polygon(star, fill=style.ring)
    elif style.emblem == 2:
        draw.rectangle(
            (box[0] + width * 3, cy + size // 7, box[2] - width * 3, cy + size // 7 + width * 2),
            fill=style.ring,
        )
    elif style.emblem == 3:
        for k in (-1, 0, 1):
            x = cx + k * size // 10
            draw.ellipse(
                (x - width, box[3] - 5 * width, x + width, box[3] - 3 * width), fill=style.ring
            )
    initials = _initials(word)
    font = ImageFont.truetype(str(style.font), size=(box[3] - box[1]) * 2 // 5)
    draw.text((cx, cy), initials, fill=style.ink, font=font, anchor="mm")
    if style.word_below:
        small = ImageFont.truetype(str(style.font), size=size // 9)
        draw.text((size // 2, int(size * 0.86)), word, fill=style.ring, font=small, anchor="mm",
                  stroke_width=2, stroke_fill=style.ink)  # fmt: skip
    return image


def draw_logos(fonts: Sequence[Path], folder: Path, seed: int, count: int) -> list[Source]:
    """``count`` logos, ``MEMBERS`` per brand style, written to ``folder/<style>/``."""
    rng = np.random.default_rng([seed, 2121])
    found: list[Source] = []
    for family in range((count + MEMBERS - 1) // MEMBERS):
        style = _style(rng, fonts)
        sub = folder / f"brand{family:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        words: dict[str, str] = {}  # by initials: no two logos of a brand alike in them
        while len(words) < MEMBERS:
            word = _word(rng)
            words.setdefault(_initials(word), word)
        for word in sorted(words.values()):
            path = sub / f"{word.lower()}.png"
            draw_logo(style, word).save(path)
            found.append(Source(path, f"logos/brand{family:03d}"))
    return found[:count]
