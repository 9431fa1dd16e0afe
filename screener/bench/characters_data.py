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

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image

from screener.bench.creature_art import SPECIES, draw_creature, look_of

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
# The portraits folders that draw each unit race (human units share one; necromancers
# are drawn with the humans, liches with the undead).
WESNOTH_PORTRAITS = {
    "drakes": ("drakes",),
    "dwarves": ("dwarves",),
    "elves-wood": ("elves",),
    "goblins": ("goblins",),
    "human-loyalists": ("humans",),
    "human-magi": ("humans",),
    "human-outlaws": ("humans",),
    "human-peasants": ("humans",),
    "merfolk": ("merfolk",),
    "monsters": ("monsters",),
    "nagas": ("nagas",),
    "orcs": ("orcs",),
    "trolls": ("trolls",),
    "undead": ("undead",),
    "undead-necromancers": ("humans", "undead"),
    "undead-skeletal": ("undead",),
    "woses": ("woses",),
}


def _portrait_names(unit: str) -> tuple[str, ...]:
    """A unit's portrait file names: portraits name mages by colour last (``mage-red``
    for the ``red-mage`` sprite), and the dark adept's sprite is plain ``adept``."""
    mage = re.fullmatch(r"([a-z]+)-mage(\+female)?", unit)
    names = [unit]
    if mage:
        names.append(f"mage-{mage.group(1)}{mage.group(2) or ''}")
    if unit.startswith("adept"):
        names.append(f"dark-{unit}")
    return tuple(names)


def wesnoth(roots: Sequence[Path]) -> list[Character]:
    """Units (sprite frames in ``units/<race>/<unit>[-action-n].png``) with their painted
    portraits as the other style, kin = race."""
    base = _find(roots, WESNOTH, "wesnoth-1.16-data")
    out = []
    for race in sorted(p for p in (base / "units").iterdir() if p.is_dir()):
        frames = _units(sorted(race.glob("*.png")))
        folders = WESNOTH_PORTRAITS.get(race.name, (race.name,))
        for unit, paths in frames.items():
            poses = tuple(_art(p, base) for p in paths if _usable(p))
            styles = tuple(
                _art(p, base)
                for folder in folders
                for name in _portrait_names(unit)
                for p in (
                    base / "portraits" / folder / f"{name}.png",
                    base / "portraits" / folder / "transparent" / f"{name}.png",
                )
                if p.is_file() and _usable(p)
            )
            out.append(Character("wesnoth", unit, race.name, poses, styles[:1]))
    return out


def _units(paths: Sequence[Path]) -> dict[str, list[Path]]:
    """Frames by unit: a unit is a file name that extends no other by a dash
    (``dark-adept``), and each frame belongs to the longest unit it extends
    (``dark-adept-magic-3``; ``dark-sorcerer`` is another unit)."""
    stems = {p.stem for p in paths}
    units = {s for s in stems if not any(s.startswith(f"{o}-") for o in stems if o != s)}
    out: dict[str, list[Path]] = {}
    for path in paths:
        owners = [u for u in units if path.stem == u or path.stem.startswith(f"{u}-")]
        if owners:
            out.setdefault(max(owners, key=len), []).append(path)
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
    "snowball": {
        "captain_snowball": ("captain", "cpt"),
        "kamikaze_snowball": ("kamikaze", "ks"),
        "smartball": ("smartball",),
    },
    "jumpy": {"wooden_jumpy": ("wooden",)},
    "mr_cherry": {"juicebox": ("juicebox",)},
}
# Frames of a state or a part rather than the character (on fire, frozen, melted,
# squashed, an editor icon, a hat or an eye on its own).
SUPERTUX_NOT_A_POSE = re.compile(
    r"burn|frozen|freeze|(^|[-_])iced?([-_.]|$)|melting|squish|editor|dust|worldmap|hud|"
    r"collision|fade|broken|overlay|hat|head|eye|whites|sparkle|_hit|mhill|rock|^fire"
)
# Where a creature's folder also holds other things (Tux's power-up hats and helmets),
# the subfolders that hold the creature itself.
SUPERTUX_FOLDERS = {"tux": ("big", "small")}


def supertux(roots: Sequence[Path]) -> list[Character]:
    """Creatures (frames under ``creatures/<name>/``), kin from `SUPERTUX_KIN`."""
    base = _find(roots, SUPERTUX, "supertux-data")
    out = []
    for name in SUPERTUX_CHARACTERS:
        folder = base / "creatures" / name
        groups: dict[str, list[Path]] = {}
        keep = SUPERTUX_FOLDERS.get(name)
        for path in sorted(folder.rglob("*.png")):
            if SUPERTUX_NOT_A_POSE.search(path.name):
                continue
            if keep and path.relative_to(folder).parts[0] not in keep:
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
