"""A small, seeded development suite of partial copies (issue 21, items 3-6).

The multi-domain suite (``screener bench accuracy``) is the measurement; this one is
small enough to iterate on while choosing methods for small and partial copies. It draws
works and same-family look-alikes (never registered) from three Debian packages
(elementary-xfce-icon-theme: flat icons; wesnoth-1.16-data: painted portraits;
mate-backgrounds: photographs) and composites onto plasma-workspace-wallpapers photos.
Every edit is applied to works (positives) and to look-alikes (negatives), so a method
that finds more copies by matching anything in the same style shows up as false positives.

Writes a works folder, a query folder and ``truth.csv`` that ``screener bench accuracy
--works-dir ... --queries ... --truth ...`` reads.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from screener.bench.transforms import WHITE, flat

DEBS = Path("/work/cache/debs")
# (domain, package, folder inside the package, glob)
SOURCES = (
    ("icons", "elementary-xfce-icon-theme", "usr/share/icons/elementary-xfce/apps/128", "*.png"),
    (
        "portraits",
        "wesnoth-1.16-data",
        "usr/share/games/wesnoth/1.16/data/core/images/portraits",
        "**/*.png",
    ),
    ("photos", "mate-backgrounds", "usr/share/backgrounds/mate", "nature/*.jpg"),
)
BACKGROUNDS = ("plasma-workspace-wallpapers", "usr/share/wallpapers", "**/1920x1080.jpg")

Edit = Callable[[Image.Image, np.random.Generator, "Backdrops"], Image.Image]


class Backdrops:
    """New photographs to composite onto: one package's wallpapers, seeded crops."""

    def __init__(self, paths: list[Path]) -> None:
        if not paths:
            raise ValueError(
                "no wallpapers found: `apt-get download plasma-workspace-wallpapers` and "
                f"`dpkg-deb -x` it into {DEBS / BACKGROUNDS[0]}"
            )
        self.paths = paths
        self._cache: dict[Path, Image.Image] = {}

    def draw(self, rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
        path = self.paths[int(rng.integers(0, len(self.paths)))]
        if path not in self._cache:
            image = Image.open(path).convert("RGB")
            image.thumbnail((1024, 1024))
            self._cache[path] = image
        photo = self._cache[path]
        scale = max(size[0] / photo.width, size[1] / photo.height) * float(rng.uniform(1.0, 1.6))
        photo = photo.resize((math.ceil(photo.width * scale), math.ceil(photo.height * scale)))
        x = int(rng.integers(0, photo.width - size[0] + 1))
        y = int(rng.integers(0, photo.height - size[1] + 1))
        return photo.crop((x, y, x + size[0], y + size[1]))


def _side(rng: np.random.Generator) -> int:
    return int(rng.integers(256, 513))


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))


def _composite(low: float, high: float) -> Edit:
    def edit(work: Image.Image, rng: np.random.Generator, backs: Backdrops) -> Image.Image:
        side = _side(rng)
        canvas = backs.draw(rng, (side, side))
        pasted = _fit(work, max(16, round(side * float(rng.uniform(low, high)))))
        x = int(rng.integers(0, side - pasted.width + 1))
        y = int(rng.integers(0, side - pasted.height + 1))
        mask = pasted.getchannel("A") if pasted.mode == "RGBA" else None
        canvas.paste(pasted.convert("RGB"), (x, y), mask)
        return canvas

    return edit


def _crop(low: float, high: float, centred: bool) -> Edit:
    def edit(work: Image.Image, rng: np.random.Generator, backs: Backdrops) -> Image.Image:
        base = _fit(flat(work), _side(rng))
        keep = float(rng.uniform(low, high))
        cw, ch = round(base.width * keep), round(base.height * keep)
        if centred:
            x, y = (base.width - cw) // 2, (base.height - ch) // 2
        else:
            x = int(rng.integers(0, base.width - cw + 1))
            y = int(rng.integers(0, base.height - ch + 1))
        return base.crop((x, y, x + cw, y + ch))

    return edit


def _pad(work: Image.Image, rng: np.random.Generator, backs: Backdrops) -> Image.Image:
    base = flat(work)
    w = base.width
    border = tuple(int(rng.integers(w // 10, w // 2)) for _ in range(4))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    return _fit(ImageOps.expand(base, border=border, fill=colour), _side(rng))


def _rotate(work: Image.Image, rng: np.random.Generator, backs: Backdrops) -> Image.Image:
    angle = 15.0 * (1 if rng.random() < 0.5 else -1)
    turned = flat(work).rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=WHITE)
    return _fit(turned, _side(rng))


def _combo(work: Image.Image, rng: np.random.Generator, backs: Backdrops) -> Image.Image:
    out = _crop(0.8, 0.9, False)(work, rng, backs)
    out = ImageEnhance.Brightness(out).enhance(float(rng.uniform(0.8, 1.2)))
    out = out.rotate(float(rng.uniform(-5, 5)), Image.Resampling.BICUBIC, fillcolor=WHITE)
    return out


def _clean(work: Image.Image, rng: np.random.Generator, backs: Backdrops) -> Image.Image:
    return _fit(flat(work), _side(rng))


EDITS: dict[str, Edit] = {
    "clean": _clean,
    "composite_small": _composite(0.25, 0.35),
    "composite_medium": _composite(0.45, 0.65),
    "crop_offset": _crop(0.6, 0.75, False),
    "crop_center_50": _crop(0.5, 0.5, True),
    "pad_border": _pad,
    "rotate_15": _rotate,
    "combo": _combo,
}


def _collage(work: Image.Image, others: list[Image.Image], rng: np.random.Generator) -> Image.Image:
    """One tile of four; the other three are look-alikes from the same family."""
    tile = _side(rng) // 2
    canvas = Image.new("RGB", (2 * tile, 2 * tile), WHITE)
    slot = int(rng.integers(0, 4))
    fillers = iter(others)
    for i in range(4):
        source = work if i == slot else next(fillers)
        canvas.paste(_fit(flat(source), tile), ((i % 2) * tile, (i // 2) * tile))
    return canvas


def _load(path: Path) -> Image.Image:
    source = Image.open(path)
    transparent = "A" in source.getbands() or source.mode == "P"
    image = source.convert("RGBA" if transparent else "RGB")
    image.thumbnail((512, 512))
    return image


def build(out: Path, works_per_domain: int, lookalikes_per_domain: int, seed: int) -> None:
    """Write the suite under ``out`` (``works/``, ``queries/``, ``truth.csv``)."""
    rng = np.random.default_rng(seed)
    backs = Backdrops(sorted((DEBS / BACKGROUNDS[0] / BACKGROUNDS[1]).glob(BACKGROUNDS[2])))
    rows: list[tuple[str, str, str]] = []
    (out / "queries").mkdir(parents=True, exist_ok=True)
    for domain, package, folder, pattern in SOURCES:
        paths = sorted((DEBS / package / folder).glob(pattern))
        if len(paths) < 8:
            raise ValueError(f"{domain}: need {package} extracted under {DEBS / package}")
        # A small package gives what it has, half works and half look-alikes.
        n_works = min(works_per_domain, len(paths) // 2)
        n_like = min(lookalikes_per_domain, len(paths) - n_works)
        chosen = [paths[i] for i in rng.permutation(len(paths))]
        works = chosen[:n_works]
        lookalikes = chosen[n_works : n_works + n_like]
        family = [_load(p) for p in lookalikes]
        for kind, sources in (("work", works), ("lookalike", lookalikes)):
            for number, path in enumerate(sources):
                image = _load(path)
                name = f"{domain}{number:03d}"
                truth = name if kind == "work" else ""
                if kind == "work":
                    (out / "works" / name).mkdir(parents=True, exist_ok=True)
                    image.save(out / "works" / name / f"{name}.png")
                prefix = f"{name}-{kind}"
                for category, edit in EDITS.items():
                    query = edit(image, rng, backs)
                    query.convert("RGB").save(out / "queries" / f"{prefix}-{category}.png")
                    rows.append((f"{prefix}-{category}", truth, category))
                others = [family[int(i)] for i in rng.choice(len(family), 3, replace=False)]
                if kind == "lookalike":
                    others = [o for o in others if o is not image][:3]
                    while len(others) < 3:
                        others.append(family[0])
                collage = _collage(image, others, rng)
                collage.save(out / "queries" / f"{prefix}-collage_2x2.png")
                rows.append((f"{prefix}-collage_2x2", truth, "collage_2x2"))
    with (out / "truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "work_id", "category"])
        writer.writerows(rows)


def subset(source: Path, out: Path, categories: set[str], per_domain: int) -> int:
    """A smaller suite linked from a built one: the first ``per_domain`` works and
    look-alikes of each domain, in ``categories`` only. Returns the number of queries."""
    with (source / "truth.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def number(query_id: str) -> int:
        return int(query_id.split("-", 1)[0][-3:])

    kept = [r for r in rows if r["category"] in categories and number(r["query_id"]) < per_domain]
    (out / "queries").mkdir(parents=True, exist_ok=True)
    (out / "works").mkdir(parents=True, exist_ok=True)
    for row in kept:
        name = f"{row['query_id']}.png"
        (out / "queries" / name).symlink_to(source / "queries" / name)
    for work in sorted({r["work_id"] for r in kept if r["work_id"]}):
        (out / "works" / work).symlink_to(source / "works" / work)
    with (out / "truth.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["query_id", "work_id", "category"])
        writer.writeheader()
        writer.writerows(kept)
    return len(kept)


if __name__ == "__main__":
    import sys

    if sys.argv[1] == "subset":
        wanted = set(sys.argv[4].split(","))
        print(subset(Path(sys.argv[2]), Path(sys.argv[3]), wanted, int(sys.argv[5])))
    else:
        build(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
