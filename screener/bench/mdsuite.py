"""The seeded multi-domain suite: works, distractors and look-alikes from several domains.

For each domain a seeded share of its sources becomes registered works and another share
never-registered distractors; near-duplicate sources are dropped first (`suite._distinct`,
the ``SHARED_INLIERS`` rule), so that a distractor is never really a copy. Every work gets
every category of `screener.bench.categories`; every distractor its untouched form and a seeded
subset of them. A group id reads ``<domain>.<kind><n>``: kind ``w`` a work, ``l`` a
distractor of a family that holds a work (same theme, same character set, same brand
style: a look-alike), ``d`` any other distractor. The truth CSV carries domain and kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from screener.bench import suite as suite_mod
from screener.bench.categories import CATEGORIES, query_side, sized
from screener.bench.domains import Domain, Source, sources
from screener.bench.suite import Query, Suite
from screener.bench.transforms import flat

UNTOUCHED = suite_mod.UNTOUCHED
WORK, LOOKALIKE, DISTRACTOR = "w", "l", "d"
KINDS = {WORK: "copy", LOOKALIKE: "lookalike", DISTRACTOR: "distractor"}


@dataclass(frozen=True)
class Picked:
    works: list[tuple[Source, Image.Image]]
    distractors: list[tuple[Source, Image.Image]]


def domain_of(group: str) -> str:
    return group.split(".", 1)[0]


def kind_of(group: str) -> str:
    """``copy``, ``lookalike`` or ``distractor``, from a group id."""
    return KINDS[group.split(".", 1)[1][0]]


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGBA")


def pick(
    domain: Domain,
    scratch: Path,
    *,
    works: int,
    distractors: int,
    seed: int,
    index: int,
    max_side: int = 512,
) -> Picked:
    """The domain's works and distractors, none a near-duplicate of another."""
    rng = np.random.default_rng([seed, index])
    found = sources(domain, scratch, seed, count=2 * (works + distractors))
    order = [found[int(i)] for i in rng.permutation(len(found))]
    by_path = {s.path: s for s in order}
    paths = [s.path for s in order]
    if domain.fonts:
        # Drawn logos share nothing but their brand style by construction (distinct words,
        # distinct initials), and a shared style is what makes a look-alike: the
        # near-duplicate rule (which counts a shared badge as shared artwork) is not for them.
        drawn = [(p, _open(p)) for p in paths[: works + distractors]]
        return Picked(
            [(by_path[p], im) for p, im in drawn[:works]],
            [(by_path[p], im) for p, im in drawn[works:]],
        )
    # The same order twice: the second pool skips what the first took (a zero-bit PDQ).
    chosen_works, chosen_distractors = suite_mod._distinct(
        [(paths, works), (paths, distractors)], max_side, min_bits=64, max_cosine=0.6
    )
    if len(chosen_works) < works or len(chosen_distractors) < distractors:
        raise ValueError(
            f"domain {domain.name}: only {len(chosen_works) + len(chosen_distractors)} distinct "
            f"usable images; asked for {works} works + {distractors} distractors"
        )
    return Picked(
        [(by_path[p], im) for p, im in chosen_works],
        [(by_path[p], im) for p, im in chosen_distractors],
    )


def build(
    domains: Sequence[Domain],
    out: Path,
    *,
    works: int,
    distractors: int,
    seed: int,
    distractor_edits: int | None = None,
    categories: Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Suite:
    """Write the suite under ``out`` (works/, queries/, truth.csv) and return it."""
    names = list(categories) if categories else list(CATEGORIES)
    unknown = sorted(set(names) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; known: {list(CATEGORIES)}")
    if distractor_edits is not None and not 0 <= distractor_edits <= len(names):
        raise ValueError(f"distractor edits must be 0 to {len(names)}, not {distractor_edits}")
    suite_mod.make_folders(out)
    suite_works: dict[str, list[Path]] = {}
    queries: list[Query] = []
    for index, domain in enumerate(domains):
        picked = pick(
            domain, out / "sources", works=works, distractors=distractors, seed=seed, index=index
        )
        families = {s.family for s, _ in picked.works}
        tiles = [im for _, im in picked.distractors]
        items: list[tuple[str, Image.Image]] = [
            (f"{domain.name}.{WORK}{n:04d}", im) for n, (_, im) in enumerate(picked.works)
        ]
        for n, (source, im) in enumerate(picked.distractors):
            kind = LOOKALIKE if source.family in families else DISTRACTOR
            items.append((f"{domain.name}.{kind}{n:04d}", im))
        for position, (group, image) in enumerate(items):
            is_work = kind_of(group) == "copy"
            item_rng = np.random.default_rng([seed, index, position])
            if is_work:
                suite_works[group] = suite_mod.save_reference(out, group, image)
                todo = names
                others = tiles
            else:
                todo = [UNTOUCHED, *suite_mod._some_edits(names, distractor_edits, item_rng)]
                others = [t for t in tiles if t is not image]
            for category in todo:
                side = query_side(item_rng)
                if category == UNTOUCHED:
                    edited = sized(flat(image), side)
                else:
                    edited = CATEGORIES[category](image, item_rng, side, others)
                queries.append(suite_mod.save_query(out, group, category, edited, is_work))
            if progress:
                progress(1)
    suite_mod.write_truth(
        out,
        queries,
        {"domain": lambda q: domain_of(q.group), "kind": lambda q: kind_of(q.group)},
    )
    return Suite(suite_works, queries)
