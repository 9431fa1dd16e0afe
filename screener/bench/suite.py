"""Accuracy suites: a works folder, a query folder and a truth CSV.

`build` makes one from any folder of images: a seeded share becomes registered works, a
disjoint share (or a seeded share of other folders) never-registered distractors, and every
transform of `screener.bench.transforms` is applied to both (positives and negatives; a
distractor may get a seeded subset of them). Near-duplicate source images (the same icon in
another colour) are dropped first, so that a "distractor" is never really a copy.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from screener import models
from screener.bench.transforms import TRANSFORMS
from screener.cli import IMAGE_SUFFIXES, images_in
from screener.core.decode import DecodedImage, Limits, decode_file
from screener.core.errors import DecodeError
from screener.matching.candidates import hamming
from screener.models import Fingerprinter
from screener.models.hashes import PDQ, PHash
from screener.models.keypoints import LocalFeatures, SiftExtractor, verify

UNTOUCHED = "untouched"
# Verified inliers that make two source images share artwork. Counted with the keypoint
# size and angle check of `screener.models.keypoints.verify`: among all pairs of 213 Tango
# icons (not
# a benchmark set), every pair with 8 or more shared a drawn element (the same envelope,
# cloud, sheet of paper, folder or face), while chance agreement mostly stays at 5 or
# below. At 15, themed icons with a common element passed as "unrelated" distractors.
SHARED_INLIERS = 8


@dataclass(frozen=True)
class Query:
    id: str
    path: Path
    work_id: str | None
    category: str
    group: str  # the source image it was made from: fit/hold-out splits keep groups whole


@dataclass(frozen=True)
class Suite:
    works: dict[str, list[Path]]
    queries: list[Query]


def make_folders(out: Path) -> None:
    (out / "works").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(parents=True, exist_ok=True)


def save_reference(out: Path, group: str, image: Image.Image) -> list[Path]:
    """Write a work's reference image under ``works/<group>/`` and return its paths."""
    folder = out / "works" / group
    folder.mkdir(exist_ok=True)
    reference = folder / "reference.png"
    image.save(reference)
    return [reference]


def save_query(out: Path, group: str, category: str, edited: Image.Image, is_work: bool) -> Query:
    """Write one query (``group`` under edit ``category``) under ``queries/``."""
    qid = f"{group}-{category}"
    path = out / "queries" / f"{qid}.png"
    edited.save(path)
    return Query(qid, path, group if is_work else None, category, group)


def write_truth(
    out: Path, queries: Sequence[Query], extra: Mapping[str, Callable[[Query], str]] | None = None
) -> None:
    """Write ``truth.csv``: query id, work id (empty for a distractor), category, and one
    column per ``extra`` entry (its header, and how to read it off a query)."""
    columns = dict(extra or {})
    with (out / "truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "work_id", "category", *columns])
        for q in queries:
            writer.writerow([q.id, q.work_id or "", q.category, *(f(q) for f in columns.values())])


def _rgba(decoded: DecodedImage, max_side: int) -> Image.Image:
    image = decoded.image.convert("RGBA")
    if decoded.alpha is not None and decoded.is_transparent:
        image.putalpha(decoded.alpha)
    image.thumbnail((max_side, max_side))
    return image


def _sources(folder: Path) -> list[Path]:
    files = images_in([folder]) if folder.is_dir() else []
    if not files:
        raise ValueError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _distractor_sources(paths: Sequence[Path]) -> list[Path]:
    """The image files given or inside the given folders, each file once (icon themes link
    one file under many names)."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ValueError(f"distractor images: no such file or folder: {', '.join(missing)}")
    files = list(dict.fromkeys(p.resolve() for p in images_in(paths)))
    if not files:
        named = ", ".join(str(p) for p in paths)
        raise ValueError(f"{named} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def _some_edits(names: Sequence[str], count: int | None, rng: np.random.Generator) -> list[str]:
    """``count`` of the edits (all when None), drawn from the item's own generator."""
    if count is None or count >= len(names):
        return list(names)
    keep = np.sort(rng.choice(len(names), size=count, replace=False))
    return [names[int(i)] for i in keep]


def _distinct(
    pools: Sequence[tuple[Sequence[Path], int]], max_side: int, min_bits: int, max_cosine: float
) -> list[list[tuple[Path, Image.Image]]]:
    """For each pool of (paths, wanted), the first ``wanted`` images of its paths (in the
    given order) no two of which, in this pool or an earlier one, look derived.

    Icon themes and sprite sheets reuse artwork: the same folder under other badges, a
    clock inside a calendar. Such pairs are copies in every sense that matters here, so a
    "distractor" made from one would be a mislabelled copy. An image is skipped when its
    PDQ is within ``min_bits``, its pHash within 12 bits, or its SSCD cosine above
    ``max_cosine`` of one already chosen, or when local features verify a part of it
    inside one already chosen (``SHARED_INLIERS`` or more RANSAC inliers: the same globe
    on a folder and on a network icon), which whole-image signals cannot see.
    """
    pdq, phash = PDQ(), PHash()
    sscd: Fingerprinter | None
    try:
        sscd = models.create("sscd")
    except models.ModelUnavailable:
        sscd = None
    try:
        sift: SiftExtractor | None = SiftExtractor()
    except models.ModelUnavailable:
        sift = None
    local: list[LocalFeatures] = []
    hashes: list[np.ndarray] = []
    phashes: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []

    def admit(path: Path) -> Image.Image | None:
        try:
            image = _rgba(decode_file(path, limits=Limits(), max_side=max_side), max_side)
        except DecodeError:
            return None
        if min(image.size) < 32:
            return None
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        fp = pdq.fingerprint([flat])[0]
        if (fp.quality or 0.0) < 0.3:
            return None  # nearly blank
        bits = fp.vector[None, :]
        if hashes and int(hamming(bits, np.stack(hashes)).min()) <= min_bits:
            return None
        short = phash.fingerprint([flat])[0].vector
        if phashes and int(hamming(short[None, :], np.stack(phashes)).min()) <= 12:
            return None
        if sscd is not None:
            embedding = sscd.fingerprint([flat])[0].vector
            if embeddings and float((np.stack(embeddings) @ embedding).max()) > max_cosine:
                return None
        if sift is not None:
            features = sift.extract(flat)
            if any(
                max(verify(features, other).inliers, verify(other, features).inliers)
                >= SHARED_INLIERS
                for other in local
            ):
                return None
            local.append(features)
        if sscd is not None:
            embeddings.append(embedding)
        hashes.append(fp.vector)
        phashes.append(short)
        return image

    picked: list[list[tuple[Path, Image.Image]]] = []
    for paths, wanted in pools:
        chosen: list[tuple[Path, Image.Image]] = []
        for path in paths:
            if len(chosen) >= wanted:
                break
            image = admit(path)
            if image is not None:
                chosen.append((path, image))
        picked.append(chosen)
    return picked


def build(
    source: Path,
    out: Path,
    *,
    works: int,
    distractors: int,
    seed: int,
    categories: Sequence[str] | None = None,
    distractor_sources: Sequence[Path] = (),
    distractor_edits: int | None = None,
    max_side: int = 384,
    min_bits: int = 64,
    max_cosine: float = 0.6,
    progress: Callable[[int], None] | None = None,
) -> Suite:
    """Write a suite under ``out`` (works/, queries/, truth.csv) and return it.

    Distractors come from ``distractor_sources`` (files or folders) when given, else from
    ``source``; each is kept untouched and gets ``distractor_edits`` of the edits (all
    when None), drawn from its own seeded generator."""
    names = list(categories) if categories else list(TRANSFORMS)
    unknown = sorted(set(names) - set(TRANSFORMS))
    if unknown:
        raise ValueError(f"unknown transform(s) {unknown}; known: {sorted(TRANSFORMS)}")
    if distractor_edits is not None and not 0 <= distractor_edits <= len(names):
        raise ValueError(
            f"distractor edits must be 0 to {len(names)} (the edits in use), not {distractor_edits}"
        )
    rng = np.random.default_rng(seed)
    paths = _sources(source)
    order = [paths[i] for i in rng.permutation(len(paths))]
    if distractor_sources:
        others = _distractor_sources(distractor_sources)
        other_order = [others[i] for i in rng.permutation(len(others))]
        picked_works, picked_distractors = _distinct(
            [(order, works), (other_order, distractors)], max_side, min_bits, max_cosine
        )
        if len(picked_works) < works:
            raise ValueError(
                f"{source} has only {len(picked_works)} distinct usable images; "
                f"asked for {works} works"
            )
        if len(picked_distractors) < distractors:
            named = ", ".join(str(p) for p in distractor_sources)
            raise ValueError(
                f"{named} has only {len(picked_distractors)} distinct usable images "
                f"(none a copy of a work or of another); asked for {distractors} distractors"
            )
        picked = picked_works + picked_distractors
    else:
        (picked,) = _distinct([(order, works + distractors)], max_side, min_bits, max_cosine)
        if len(picked) < works + distractors:
            raise ValueError(
                f"{source} has only {len(picked)} distinct usable images; "
                f"asked for {works} works + {distractors} distractors"
            )
    make_folders(out)
    suite_works: dict[str, list[Path]] = {}
    queries: list[Query] = []
    for position, (_, image) in enumerate(picked):
        is_work = position < works
        group = f"w{position:04d}" if is_work else f"d{position - works:04d}"
        if is_work:
            suite_works[group] = save_reference(out, group, image)
        item_rng = np.random.default_rng([seed, position])
        todo = names if is_work else [UNTOUCHED, *_some_edits(names, distractor_edits, item_rng)]
        for category in todo:
            if category == UNTOUCHED:
                edited = Image.new("RGB", image.size, (255, 255, 255))
                edited.paste(image, mask=image.getchannel("A"))
            else:
                edited = TRANSFORMS[category](image, item_rng)
            queries.append(save_query(out, group, category, edited, is_work))
        if progress:
            progress(1)
    write_truth(out, queries)
    return Suite(suite_works, queries)


def load(works_dir: Path, queries_dir: Path, truth_csv: Path) -> Suite:
    """Read a suite: one subfolder per work, query files named by id, and the truth CSV."""
    works = {sub.name: _sources(sub) for sub in sorted(works_dir.iterdir()) if sub.is_dir()}
    if not works:
        raise ValueError(f"{works_dir} has no work subfolders")
    files = {p.stem: p for p in _sources(queries_dir)}
    queries = []
    with truth_csv.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            qid = (row.get("query_id") or "").strip()
            if qid not in files:
                raise ValueError(
                    f"{truth_csv}:{line}: no query file named {qid!r} in {queries_dir}"
                )
            work = (row.get("work_id") or "").strip() or None
            if work is not None and work not in works:
                raise ValueError(f"{truth_csv}:{line}: work {work!r} has no folder in {works_dir}")
            category = (row.get("category") or "").strip() or "all"
            group = work or qid.rsplit("-", 1)[0]
            queries.append(Query(qid, files[qid], work, category, group))
    if not queries:
        raise ValueError(f"{truth_csv} lists no queries")
    return Suite(works, queries)
