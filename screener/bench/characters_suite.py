"""A character-likeness suite: registered characters, and queries that show them anew.

Each source (one package, `screener.bench.characters_data`) gives its own registered
characters and its own negatives, so that a policy fitted on some sources can be judged
on another. Per registered character:

- **references**: 2-5 of its frames (from different animations where it has several),
  upscaled so that the longer side is `REFERENCE_SIDE`, on transparency;
- **new_pose**: frames of other animations, none nearly the same outline as a reference
  (`MAX_POSE_IOU`), rendered onto a plain, gradient or photo background at 40-90 % of a
  256-512 px frame, sometimes mirrored;
- **other_style**: the character drawn by another hand where the package has one (a
  Wesnoth unit's portrait; Tux as icon, retro decal or world-map figure; the code-drawn
  creatures' "outline" style), rendered the same way;
- **light_copy**: a reference with one light edit (`LIGHT_EDITS`), which must still match.

Negatives: **lookalike** (unregistered characters of a registered one's kin: another
elvish unit, another snowball creature), **other_character** (unregistered characters of
other kins) and **photo** (wallpaper pictures, none also used as a background).
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from screener.bench.characters_data import Art, Character
from screener.bench.suite import Query, Suite
from screener.bench.transforms import TRANSFORMS
from screener.cli import images_in

NEW_POSE = "new_pose"
OTHER_STYLE = "other_style"
LIGHT_COPY = "light_copy"
LOOKALIKE = "lookalike"
OTHER_CHARACTER = "other_character"
PHOTO = "photo"
POSITIVE = (NEW_POSE, OTHER_STYLE, LIGHT_COPY)
NEGATIVE = (LOOKALIKE, OTHER_CHARACTER, PHOTO)
LIGHT_EDITS = ("jpeg", "resize", "down_up", "colour")
REFERENCE_SIDE = 384
# A frame whose outline (alpha mask at 48 px) overlaps a reference's this much or more is
# the same pose, not a new one (a one-pixel step of an idle animation).
MAX_POSE_IOU = 0.85
BACKGROUNDS = ("plain", "gradient", "photo")


@dataclass(frozen=True)
class Plan:
    """How much to draw per source."""

    characters: int = 8  # registered
    references: tuple[int, int] = (2, 4)  # least and most per character
    new_poses: int = 4
    styles: int = 2
    light_copies: int = 1
    lookalikes: int = 3  # per registered character, where its kin has unregistered ones
    others: int = 6
    photos: int = 8


@dataclass(frozen=True)
class Built:
    suite: Suite
    source_of: dict[str, str]  # query or work id -> source
    arts: dict[str, tuple[str, ...]]  # query or work id -> the arts it was made from
    background_photos: tuple[str, ...] = ()
    negative_photos: tuple[str, ...] = ()
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it gave fewer


def photo_files(folders: Sequence[Path]) -> list[Path]:
    """One file per picture: wallpaper packages ship each picture in several sizes."""
    chosen: dict[str, Path] = {}
    for path in sorted(images_in(folders)):
        parts = path.parts
        key = parts[parts.index("contents") - 1] if "contents" in parts else path.stem.split("_")[0]
        chosen.setdefault(key, path)
    return list(chosen.values())


def _mask(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel("A").resize((48, 48), Image.Resampling.BILINEAR)) > 64


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def _seed(*parts: object) -> list[int]:
    return [zlib.crc32(str(p).encode()) for p in parts]


def _scaled(image: Image.Image, side: int) -> Image.Image:
    factor = side / max(image.size)
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


class _Photos:
    """Photographs, decoded once at a modest size."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self._cache: dict[int, Image.Image] = {}

    def get(self, i: int) -> Image.Image:
        if i not in self._cache:
            with Image.open(self.paths[i]) as image:
                image.draft("RGB", (1024, 1024))
                small = image.convert("RGB")
            small.thumbnail((1024, 1024))
            self._cache[i] = small
        return self._cache[i]


def _canvas(rng: np.random.Generator, photos: _Photos) -> tuple[Image.Image, str]:
    w = int(rng.integers(256, 513))
    h = int(np.clip(w * rng.uniform(0.75, 1.33), 256, 512))
    kinds = BACKGROUNDS if photos.paths else BACKGROUNDS[:2]
    kind = str(kinds[int(rng.integers(len(kinds)))])
    if kind == "plain":
        r, g, b = (int(c) for c in rng.integers(0, 256, size=3))
        return Image.new("RGB", (w, h), (r, g, b)), kind
    if kind == "gradient":
        a, b = rng.integers(0, 256, size=(2, 3)).astype(np.float64)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        t = xx / w * np.cos(angle) + yy / h * np.sin(angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-9)
        pixels = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
        return Image.fromarray(pixels.astype(np.uint8), "RGB"), kind
    photo = photos.get(int(rng.integers(len(photos.paths))))
    return ImageOps.fit(photo, (w, h), Image.Resampling.BILINEAR), kind


def render(
    figure: Image.Image, rng: np.random.Generator, photos: _Photos, mirror: float = 0.0
) -> Image.Image:
    """``figure`` (RGBA) at 40-90 % of a 256-512 px frame on a seeded background."""
    canvas, _ = _canvas(rng, photos)
    if rng.random() < mirror:
        figure = ImageOps.mirror(figure)
    share = float(rng.uniform(0.4, 0.9))
    factor = share * min(canvas.width / figure.width, canvas.height / figure.height)
    size = (max(1, round(figure.width * factor)), max(1, round(figure.height * factor)))
    figure = figure.resize(size, Image.Resampling.BICUBIC)
    x = int(rng.integers(0, canvas.width - figure.width + 1))
    y = int(rng.integers(0, canvas.height - figure.height + 1))
    canvas.paste(figure, (x, y), figure)
    return canvas


def _pick(rng: np.random.Generator, items: Sequence[Art], count: int) -> list[Art]:
    if count >= len(items):
        return list(items)
    return [items[int(i)] for i in np.sort(rng.choice(len(items), size=count, replace=False))]


def _references(
    rng: np.random.Generator, character: Character, plan: Plan
) -> tuple[list[Art], list[Art]] | None:
    """(references, new-pose candidates), or None when the character has too few poses."""
    by_action: dict[str, list[Art]] = {}
    for art in character.poses:
        by_action.setdefault(art.action, []).append(art)
    actions = sorted(by_action)
    lo, hi = plan.references
    wanted = int(rng.integers(lo, hi + 1))
    order = [actions[int(i)] for i in rng.permutation(len(actions))]
    # The still frame of the character (no action) is what a rights holder shows first.
    base = character.name if character.name in by_action else None
    if base is not None:
        order.remove(base)
        order.insert(0, base)
    if len(order) >= wanted + 1:
        chosen_actions = order[:wanted]
        refs = [by_action[a][int(rng.integers(len(by_action[a])))] for a in chosen_actions]
        rest = [a for a in character.poses if a.action not in chosen_actions]
    else:
        shuffled = [character.poses[int(i)] for i in rng.permutation(len(character.poses))]
        refs, rest = shuffled[:wanted], shuffled[wanted:]
    if len(refs) < lo:
        return None
    masks = [_mask(r.load()) for r in refs]
    fresh = [a for a in rest if max(_iou(_mask(a.load()), m) for m in masks) < MAX_POSE_IOU]
    return (refs, fresh) if fresh else None


def build(
    sources: Mapping[str, Sequence[Character]],
    photos: Sequence[Path],
    out: Path,
    *,
    seed: int,
    plan: Plan = Plan(),
    progress: Callable[[int], None] | None = None,
) -> Built:
    """Write the suite under ``out`` (works/, queries/, truth.csv, manifest.json)."""
    (out / "works").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    pool = sorted(photos, key=lambda p: zlib.crc32(f"{seed}:{p.name}:{p.parent}".encode()))
    backgrounds, negatives = pool[: len(pool) // 2], pool[len(pool) // 2 :]
    bank = _Photos(backgrounds)
    works: dict[str, list[Path]] = {}
    queries: list[Query] = []
    source_of: dict[str, str] = {}
    arts: dict[str, tuple[str, ...]] = {}
    skipped: dict[str, str] = {}

    def emit(
        qid: str,
        image: Image.Image,
        work: str | None,
        category: str,
        group: str,
        source: str,
        made_from: tuple[str, ...],
    ) -> None:
        path = out / "queries" / f"{qid}.png"
        image.convert("RGB").save(path)
        queries.append(Query(qid, path, work, category, group))
        source_of[qid] = source
        arts[qid] = made_from

    for s_index, (source, characters) in enumerate(sorted(sources.items())):
        rng = np.random.default_rng([seed, *_seed(source)])
        order = [characters[int(i)] for i in rng.permutation(len(characters))]
        registered: list[tuple[Character, list[Art], list[Art]]] = []
        for character in order:
            if len(registered) >= plan.characters:
                break
            picked = _references(
                np.random.default_rng([seed, *_seed(character.id)]), character, plan
            )
            if picked is not None:
                registered.append((character, *picked))
        if len(registered) < plan.characters:
            skipped[source] = f"{len(registered)} of {plan.characters} characters have enough poses"
        taken = {c.id for c, _, _ in registered}
        for character, refs, fresh in registered:
            crng = np.random.default_rng([seed, *_seed(character.id, "queries")])
            folder = out / "works" / character.id
            folder.mkdir(exist_ok=True)
            paths = []
            reference_images = []
            for k, ref in enumerate(refs):
                image = _scaled(ref.load(), REFERENCE_SIDE)
                path = folder / f"ref{k}.png"
                image.save(path)
                paths.append(path)
                reference_images.append(image)
            works[character.id] = paths
            source_of[character.id] = source
            arts[character.id] = tuple(r.name for r in refs)
            group = f"{source}/{character.id}"
            for k, art in enumerate(_pick(crng, fresh, plan.new_poses)):
                emit(
                    f"{character.id}-{NEW_POSE}-{k}",
                    render(art.load(), crng, bank, mirror=0.3),
                    character.id,
                    NEW_POSE,
                    group,
                    source,
                    (art.name,),
                )
            for k, art in enumerate(_pick(crng, character.styles, plan.styles)):
                emit(
                    f"{character.id}-{OTHER_STYLE}-{k}",
                    render(art.load(), crng, bank),
                    character.id,
                    OTHER_STYLE,
                    group,
                    source,
                    (art.name,),
                )
            for k in range(plan.light_copies):
                which = int(crng.integers(len(refs)))
                edit = LIGHT_EDITS[int(crng.integers(len(LIGHT_EDITS)))]
                image = TRANSFORMS[edit](reference_images[which], crng)
                emit(
                    f"{character.id}-{LIGHT_COPY}-{k}",
                    image,
                    character.id,
                    LIGHT_COPY,
                    group,
                    source,
                    (refs[which].name,),
                )
            if progress:
                progress(1)
        kins = {c.kin for c, _, _ in registered}
        free = [c for c in order if c.id not in taken and c.poses]
        kin_pool = [(c, a) for c in free if c.kin in kins for a in c.poses]
        used: set[str] = set()
        nrng = np.random.default_rng([seed, *_seed(source, "negatives")])
        for character, _, _ in registered:
            mine = [(c, a) for c, a in kin_pool if c.kin == character.kin and a.name not in used]
            for i in np.sort(nrng.permutation(len(mine))[: plan.lookalikes]):
                other, art = mine[int(i)]
                used.add(art.name)
                emit(
                    f"{source}-{LOOKALIKE}-{len(used):03d}",
                    render(art.load(), nrng, bank, 0.3),
                    None,
                    LOOKALIKE,
                    f"{source}/{other.id}",
                    source,
                    (art.name,),
                )
        strangers = [c for c in free if c.kin not in kins]
        for k, i in enumerate(nrng.permutation(len(strangers))[: plan.others]):
            other = strangers[int(i)]
            art = other.poses[int(nrng.integers(len(other.poses)))]
            emit(
                f"{source}-{OTHER_CHARACTER}-{k:03d}",
                render(art.load(), nrng, bank, 0.3),
                None,
                OTHER_CHARACTER,
                f"{source}/{other.id}",
                source,
                (art.name,),
            )
        share = negatives[s_index :: len(sources)][: plan.photos]
        for k, path in enumerate(share):
            prng = np.random.default_rng([seed, *_seed(source, path)])
            photo = _Photos([path]).get(0)
            w = int(prng.integers(256, 513))
            h = int(np.clip(w * prng.uniform(0.75, 1.33), 256, 512))
            emit(
                f"{source}-{PHOTO}-{k:03d}",
                ImageOps.fit(photo, (w, h)),
                None,
                PHOTO,
                f"{source}/photo-{k}",
                source,
                (str(path),),
            )
    with (out / "truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "work_id", "category", "source", "group", "art"])
        for q in queries:
            writer.writerow(
                [q.id, q.work_id or "", q.category, source_of[q.id], q.group, ";".join(arts[q.id])]
            )
    built = Built(
        Suite(works, queries),
        source_of,
        arts,
        tuple(str(p) for p in backgrounds),
        tuple(str(p) for p in negatives),
        skipped,
    )
    manifest = {
        "seed": seed,
        "plan": plan.__dict__,
        "works": {w: {"source": source_of[w], "references": list(arts[w])} for w in works},
        "background_photos": list(built.background_photos),
        "skipped": skipped,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=list))
    return built
