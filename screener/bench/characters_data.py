"""Where the character suite's characters come from: Debian game art, or drawn in code.

A character is one figure that a rights holder could register (a Wesnoth unit, a
SuperTux creature), drawn in several poses (animation frames) and, where the package has
them, in other artists' styles (a Wesnoth unit's painted portrait against its pixel
sprite; SuperTux's Tux as the game icon or the retro decal). Its ``kin`` is its
look-alike family: the other units of a Wesnoth race, the other snowball creatures of
SuperTux. Each source is one package, the unit of the leave-one-source-out split.

The packages are found under ``/`` (installed) or under other roots given by the
caller (``apt-get download PKG && dpkg-deb -x PKG_*.deb ROOT``); a source that is
missing says which package provides it. ``creatures`` needs no package: it draws
parametric creatures, so tests and a first run need nothing installed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# The smallest drawn extent (alpha bounding box, px) a frame needs: below it a sprite is
# a particle or an icon, not a view of the character.
MIN_FRAME_SIDE = 24


@dataclass(frozen=True)
class Art:
    """One picture of a character: a name (unique within its source) and how to load it."""

    name: str
    load: Callable[[], Image.Image]  # RGBA, cropped to what is drawn

    @property
    def action(self) -> str:
        """The animation the frame belongs to (``fire-se`` of ``burner-fire-se-3``)."""
        return re.sub(r"[-_]?\d+$", "", self.name.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class Character:
    source: str
    name: str
    kin: str
    poses: tuple[Art, ...]
    styles: tuple[Art, ...] = ()  # the same character drawn in another style

    @property
    def id(self) -> str:
        """A work id: lower-case letters, digits and dashes."""
        return re.sub(r"[^a-z0-9]+", "-", f"{self.source}-{self.kin}-{self.name}".lower()).strip(
            "-"
        )


class SourceMissing(ValueError):
    """A source's package is not installed under any of the roots given."""


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        rgba = image.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    return rgba.crop(box) if box else rgba


def _usable(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
            alpha = image.convert("RGBA").getchannel("A")
    except OSError:
        return False
    box = alpha.getbbox()
    return box is not None and min(box[2] - box[0], box[3] - box[1]) >= MIN_FRAME_SIDE


def _art(path: Path, base: Path) -> Art:
    return Art(str(path.relative_to(base).with_suffix("")), partial(_open, path))


def _find(roots: Sequence[Path], pattern: str, package: str) -> Path:
    for root in roots:
        found = sorted(root.glob(pattern))
        if found:
            return found[-1]
    where = ", ".join(str(r) for r in roots)
    raise SourceMissing(
        f"no {pattern.split('*', maxsplit=1)[0].rstrip('/')} under {where}: "
        f"install {package} "
        f"(apt-get install {package}), or apt-get download {package} and dpkg-deb -x it "
        "into a folder given as --root"
    )


# Wesnoth ------------------------------------------------------------------------------------

WESNOTH = "usr/share/games/wesnoth/*/data/core/images"
# The portraits folder that draws each unit race (human units share one).
WESNOTH_PORTRAITS = {
    "drakes": "drakes",
    "dwarves": "dwarves",
    "elves-wood": "elves",
    "goblins": "goblins",
    "human-loyalists": "humans",
    "human-magi": "humans",
    "human-outlaws": "humans",
    "human-peasants": "humans",
    "merfolk": "merfolk",
    "monsters": "monsters",
    "nagas": "nagas",
    "orcs": "orcs",
    "trolls": "trolls",
    "undead": "undead",
    "undead-necromancers": "undead",
    "undead-skeletal": "undead",
    "woses": "woses",
}


def wesnoth(roots: Sequence[Path]) -> list[Character]:
    """Units (sprite frames in ``units/<race>/<unit>[-action-n].png``) with their painted
    portraits as the other style, kin = race."""
    base = _find(roots, WESNOTH, "wesnoth-1.16-data")
    out = []
    for race in sorted(p for p in (base / "units").iterdir() if p.is_dir()):
        frames: dict[str, list[Path]] = {}
        for path in sorted(race.glob("*.png")):
            frames.setdefault(path.stem.split("-")[0], []).append(path)
        portraits = base / "portraits" / WESNOTH_PORTRAITS.get(race.name, race.name)
        for unit, paths in frames.items():
            poses = tuple(_art(p, base) for p in paths if _usable(p))
            styles = tuple(
                _art(p, base)
                for p in (portraits / f"{unit}.png", portraits / "transparent" / f"{unit}.png")
                if p.is_file() and _usable(p)
            )
            out.append(Character("wesnoth", unit, race.name, poses, styles[:1]))
    return out


# SuperTux -----------------------------------------------------------------------------------

SUPERTUX = "usr/share/games/supertux2/images"
# Look-alike families among SuperTux's creatures (by eye: the same body drawn with other
# details); a creature not named here is its own family.
SUPERTUX_KIN = {
    "snowball": "snowballs",
    "bouncing_snowball": "snowballs",
    "flying_snowball": "snowballs",
    "snowjumpy": "snowballs",
    "mr_bomb": "bombs",
    "gold_bomb": "bombs",
    "haywire": "bombs",
    "short_fuse": "bombs",
    "mr_iceblock": "iceblocks",
    "icecrusher": "iceblocks",
    "mr_tree": "trees",
    "ghosttree": "trees",
    "poison_ivy": "leaves",
    "walkingleaf": "leaves",
    "leafshot": "leaves",
    "spiky": "spikies",
    "igel": "spikies",
    "spidermite": "spikies",
    "flame": "flames",
    "livefire": "flames",
    "willowisp": "flames",
    "jumpy": "jumpers",
    "skullyhop": "jumpers",
    "toad": "jumpers",
    "fish": "fish",
    "flame_fish": "fish",
}
# Tux drawn by other hands: the game icons (the current one and an older one), the retro
# decal and the world-map figure.
SUPERTUX_STYLES = {
    "tux": (
        "engine/icons/supertux-256x256.png",
        "engine/icons/old/supertux-256x256.png",
        "decal/retro/tux_old.png",
        "worldmap/common/tux.png",
    ),
}


# Creature folders that hold characters (not traps, projectiles or flames), and the
# folders that hold several: frames whose file name starts with a prefix are another
# character of the same kin (the captain snowball next to the snowball).
SUPERTUX_CHARACTERS = [
    "angrystone",
    "bouncing_snowball",
    "bsod",
    "crystallo",
    "fatbat",
    "fish",
    "flying_snowball",
    "ghoul",
    "gold_bomb",
    "haywire",
    "igel",
    "jumpy",
    "kirby",
    "leafshot",
    "mole",
    "mr_bomb",
    "mr_cherry",
    "mr_iceblock",
    "mr_tree",
    "nolok",
    "owl",
    "penny",
    "plant",
    "poison_ivy",
    "short_fuse",
    "skullyhop",
    "skydive",
    "snail",
    "snowball",
    "snowjumpy",
    "snowman",
    "spidermite",
    "spiky",
    "toad",
    "totem",
    "tux",
    "walkingleaf",
    "willowisp",
    "yeti",
    "zeekling",
]
SUPERTUX_SPLIT: dict[str, dict[str, tuple[str, ...]]] = {
    "snowball": {"captain_snowball": ("captain", "cpt"), "kamikaze_snowball": ("kamikaze",)},
    "jumpy": {"wooden_jumpy": ("wooden",)},
    "mr_cherry": {"juicebox": ("juicebox",)},
}
# Frames of a state or a part rather than the character (on fire, frozen, melted,
# squashed, an editor icon, a hat or an eye on its own).
SUPERTUX_NOT_A_POSE = re.compile(
    r"burn|frozen|freeze|iced?[-_]|melting|squish|editor|dust|worldmap|hud|collision|fade|"
    r"broken|overlay|hat|eye|whites|sparkle|_hit"
)


def supertux(roots: Sequence[Path]) -> list[Character]:
    """Creatures (frames under ``creatures/<name>/``), kin from `SUPERTUX_KIN`."""
    base = _find(roots, SUPERTUX, "supertux-data")
    out = []
    for name in SUPERTUX_CHARACTERS:
        folder = base / "creatures" / name
        groups: dict[str, list[Path]] = {}
        for path in sorted(folder.rglob("*.png")):
            if SUPERTUX_NOT_A_POSE.search(path.name):
                continue
            owner = next(
                (
                    sub
                    for sub, prefixes in SUPERTUX_SPLIT.get(name, {}).items()
                    if path.name.startswith(prefixes)
                ),
                name,
            )
            groups.setdefault(owner, []).append(path)
        kin = SUPERTUX_KIN.get(name, name)
        for owner, paths in groups.items():
            poses = tuple(_art(p, base) for p in paths if _usable(p))
            styles = tuple(
                _art(base / s, base)
                for s in SUPERTUX_STYLES.get(owner, ())
                if (base / s).is_file() and _usable(base / s)
            )
            out.append(Character("supertux", owner, kin, poses, styles))
    return out


# Creatures drawn in code --------------------------------------------------------------------

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


def creatures(count: int = 24, poses: int = 10) -> list[Character]:
    """``count`` creatures, spread over `SPECIES` (the kin), each in ``poses`` poses and
    once in the "outline" style; drawn in code, identical for every run."""
    out = []
    for i in range(count):
        species = SPECIES[i % len(SPECIES)]
        look = look_of(species, i)
        frames = tuple(
            Art(f"c{i:02d}-pose-{p}", partial(draw_creature, look, p)) for p in range(poses)
        )
        styles = (Art(f"c{i:02d}-outline-0", partial(draw_creature, look, 0, "outline")),)
        out.append(Character("creatures", f"c{i:02d}", species, frames, styles))
    return out


SOURCES: dict[str, Callable[[Sequence[Path]], list[Character]]] = {
    "wesnoth": wesnoth,
    "supertux": supertux,
    "creatures": lambda roots: creatures(),
}
