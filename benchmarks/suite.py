"""Accuracy suites: a works folder, a query folder and a truth CSV.

`build` makes one from any folder of images: a seeded share becomes registered works, a
disjoint share never-registered distractors, and every transform of `benchmarks.transforms`
is applied to both (positives and negatives). Near-duplicate source images (the same icon in
another colour) are dropped first, so that a "distractor" is never really a copy.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import models
from benchmarks.transforms import TRANSFORMS
from models import Fingerprinter
from models.hashes import PDQ, PHash
from models.local import LocalFeatures, SiftExtractor, verify
from screener.candidates import hamming
from screener.cli import IMAGE_SUFFIXES, images_in
from screener.decode import DecodedImage, Limits, decode_file
from screener.errors import DecodeError

UNTOUCHED = "untouched"
# Verified inliers that make two source images share artwork. Counted with the keypoint
# size and angle check of `models.local.verify`: among all pairs of 213 Tango icons (not
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


def _distinct(
    paths: Sequence[Path], wanted: int, max_side: int, min_bits: int, max_cosine: float
) -> list[tuple[Path, Image.Image]]:
    """The first ``wanted`` images (in the given order) no two of which look derived.

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
    chosen: list[tuple[Path, Image.Image]] = []
    hashes: list[np.ndarray] = []
    phashes: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    for path in paths:
        try:
            image = _rgba(decode_file(path, limits=Limits(), max_side=max_side), max_side)
        except DecodeError:
            continue
        if min(image.size) < 32:
            continue
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        fp = pdq.fingerprint([flat])[0]
        if (fp.quality or 0.0) < 0.3:
            continue  # nearly blank
        bits = fp.vector[None, :]
        if hashes and int(hamming(bits, np.stack(hashes)).min()) <= min_bits:
            continue
        short = phash.fingerprint([flat])[0].vector
        if phashes and int(hamming(short[None, :], np.stack(phashes)).min()) <= 12:
            continue
        if sscd is not None:
            embedding = sscd.fingerprint([flat])[0].vector
            if embeddings and float((np.stack(embeddings) @ embedding).max()) > max_cosine:
                continue
        if sift is not None:
            features = sift.extract(flat)
            if any(
                max(verify(features, other).inliers, verify(other, features).inliers)
                >= SHARED_INLIERS
                for other in local
            ):
                continue
            local.append(features)
        if sscd is not None:
            embeddings.append(embedding)
        hashes.append(fp.vector)
        phashes.append(short)
        chosen.append((path, image))
        if len(chosen) == wanted:
            break
    return chosen


def build(
    source: Path,
    out: Path,
    *,
    works: int,
    distractors: int,
    seed: int,
    categories: Sequence[str] | None = None,
    max_side: int = 384,
    min_bits: int = 64,
    max_cosine: float = 0.6,
    progress: Callable[[int], None] | None = None,
) -> Suite:
    """Write a suite under ``out`` (works/, queries/, truth.csv) and return it."""
    names = list(categories) if categories else list(TRANSFORMS)
    unknown = sorted(set(names) - set(TRANSFORMS))
    if unknown:
        raise ValueError(f"unknown transform(s) {unknown}; known: {sorted(TRANSFORMS)}")
    rng = np.random.default_rng(seed)
    paths = _sources(source)
    order = [paths[i] for i in rng.permutation(len(paths))]
    picked = _distinct(order, works + distractors, max_side, min_bits, max_cosine)
    if len(picked) < works + distractors:
        raise ValueError(
            f"{source} has only {len(picked)} distinct usable images; "
            f"asked for {works} works + {distractors} distractors"
        )
    (out / "works").mkdir(parents=True, exist_ok=True)
    (out / "queries").mkdir(parents=True, exist_ok=True)
    suite_works: dict[str, list[Path]] = {}
    queries: list[Query] = []
    for position, (_, image) in enumerate(picked):
        is_work = position < works
        group = f"w{position:04d}" if is_work else f"d{position - works:04d}"
        if is_work:
            folder = out / "works" / group
            folder.mkdir(exist_ok=True)
            reference = folder / "reference.png"
            image.save(reference)
            suite_works[group] = [reference]
        item_rng = np.random.default_rng([seed, position])
        todo = names if is_work else [UNTOUCHED, *names]
        for category in todo:
            if category == UNTOUCHED:
                edited = Image.new("RGB", image.size, (255, 255, 255))
                edited.paste(image, mask=image.getchannel("A"))
            else:
                edited = TRANSFORMS[category](image, item_rng)
            qid = f"{group}-{category}"
            path = out / "queries" / f"{qid}.png"
            edited.save(path)
            queries.append(Query(qid, path, group if is_work else None, category, group))
        if progress:
            progress(1)
    with (out / "truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "work_id", "category"])
        for q in queries:
            writer.writerow([q.id, q.work_id or "", q.category])
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
