"""Local-feature verification of candidate works: the ``local_inliers`` signal and the
matched region.

Registration stores each reference's keypoints (and, for a transparent reference, those
of the content over black too: gradients flip at the outline when the background does).
A check extracts the query's keypoints once and verifies it against the references of
the few candidate works that the global signals proposed; the best verified reference of
each work gives the work's ``local_inliers`` value and the quadrilateral where the work
sits inside the query. A character drawn in a new pose bends where one homography cannot
follow, so the same matches are also split into rigid parts (`keypoints.verify_parts`):
``part_inliers`` sums the inliers of every part found (the head, the body, a raised arm),
and each part's quad is shown in the evidence.

The global signals do not always propose the work a query copies: a small character
pasted into a busy scene changes the whole picture. :class:`DescriptorVotes` keeps the
strongest descriptors of every stored keypoint set in a descriptor-level index; each
query descriptor whose nearest stored descriptor is clearly nearer than any of another
work's votes for that work, and the works with most votes are verified too. That index
is saved in the index folder (``descriptors-<spec digest>.index``) and loaded at start, so
that a start reads from the catalog only the keypoint sets added since the save.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener.core.decode import DecodedImage, Limits, decode
from screener.core.errors import ScreenerError
from screener.index import VectorIndexError
from screener.index import descriptors as stored_index
from screener.index.descriptors import Codebook, DescriptorIndex, Layout
from screener.matching import codebook as codebook_mod
from screener.models.keypoints import (
    LocalFeatures,
    Part,
    PartParams,
    SiftExtractor,
    Verification,
    VerifyParams,
    verify_parts,
)
from screener.store.catalog import Catalog, NewLocalFeatures, StoredLocalFeatures

log = logging.getLogger(__name__)

SIGNAL = "local_inliers"
PART_SIGNAL = "part_inliers"
PLAIN = "white"  # the variant of the image as decoded (transparent: over white)
OVER_BLACK = "black"


@dataclass(frozen=True)
class PartMatch:
    """One rigid part of a verified reference: its inliers, its quad in the query's own
    pixels and its box in the reference's (downscaled copy's) pixels."""

    inliers: int
    quad: tuple[tuple[float, float], ...]
    box: tuple[float, float, float, float]

    @classmethod
    def of(cls, part: Part, scale: tuple[float, float]) -> PartMatch:
        sx, sy = scale
        return cls(part.inliers, tuple((x * sx, y * sy) for x, y in part.quad), part.box)

    def evidence(self) -> dict[str, object]:
        return {
            "inliers": self.inliers,
            "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad],
            "reference_box": [round(v, 1) for v in self.box],
        }


def summed_inliers(parts: Iterable[Part | PartMatch]) -> int:
    """The ``part_inliers`` evidence of a set of rigid parts: their inliers, summed."""
    return sum(p.inliers for p in parts)


@dataclass(frozen=True)
class LocalMatch:
    """A work's best verified reference, in the query's own pixels (the decoded
    original, not the downscaled copy the keypoints were found in)."""

    work_id: str
    reference_id: int
    variant: str
    inliers: int
    matches: int
    coverage: float
    quad: tuple[tuple[float, float], ...]
    # Inlier matches as rows of query x, y (original pixels) and reference x, y (pixels of
    # the reference's downscaled copy, ``reference_size``).
    pairs: npt.NDArray[np.float32]
    reference_size: tuple[int, int]
    # The rigid parts found (the first is the whole homography's inliers where it verified).
    parts: tuple[PartMatch, ...] = ()
    part_reference_id: int | None = None  # the reference whose parts those are

    @property
    def part_inliers(self) -> int:
        """The ``part_inliers`` evidence of the parts kept."""
        return summed_inliers(self.parts)

    def evidence(self) -> dict[str, object]:
        """The plain-data evidence a verdict carries."""
        return {
            "reference_id": self.reference_id,
            "variant": self.variant,
            "inliers": self.inliers,
            "matches": self.matches,
            "coverage": round(self.coverage, 4),
            "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad],
            "part_inliers": self.part_inliers,
            "part_reference_id": self.part_reference_id,
            "parts": [p.evidence() for p in self.parts],
        }


def _stored(features: StoredLocalFeatures) -> LocalFeatures:
    return LocalFeatures.from_bytes(
        features.points, features.descriptors, features.width, features.height
    )


def _meta(features: StoredLocalFeatures) -> StoredLocalFeatures:
    """The stored set without its keypoint bytes (those are kept parsed)."""
    return dataclasses.replace(features, points=b"", descriptors=b"")


def to_new(features: LocalFeatures, spec_id: str, variant: str) -> NewLocalFeatures:
    points, descriptors = features.to_bytes()
    return NewLocalFeatures(
        spec_id, variant, features.width, features.height, len(features), points, descriptors
    )


class LocalVerifier:
    """Extracts and verifies local features; one per screener."""

    def __init__(
        self,
        features: int,
        params: VerifyParams | None = None,
        cache_sets: int = 1024,
        directory: Path | None = None,
        part_params: PartParams | None = None,
    ) -> None:
        """``directory``: where the descriptor index is saved (None: it is not)."""
        self.extractor = SiftExtractor(features=features)
        self.params = params or VerifyParams()
        self.part_params = part_params or PartParams()
        self.votes = DescriptorVotes(self.spec_id, on_removed=self.forget, directory=directory)
        # Parsed keypoint sets by catalog row, most recently used last: a check verifies
        # the same popular works again and again (a set is about 90 KB).
        self.cache_sets = cache_sets
        self._cache: OrderedDict[int, tuple[StoredLocalFeatures, LocalFeatures]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def spec_id(self) -> str:
        return self.extractor.spec_id

    def extract(self, image: Image.Image) -> LocalFeatures:
        return self.extractor.extract(image)

    def reference_features(
        self, image: Image.Image, over_black: Image.Image | None
    ) -> tuple[NewLocalFeatures, ...]:
        """What registration stores for one reference (``over_black``: the transparent
        content over black, where there is one)."""
        found = [to_new(self.extract(image), self.spec_id, PLAIN)]
        if over_black is not None:
            found.append(to_new(self.extract(over_black), self.spec_id, OVER_BLACK))
        return tuple(found)

    def _load(
        self, catalog: Catalog, work_ids: Sequence[str]
    ) -> list[tuple[StoredLocalFeatures, LocalFeatures]]:
        """The stored keypoint sets of ``work_ids``: their row ids from the catalog, the
        keypoints from the cache or, for those not in it, from the catalog."""
        rows = catalog.local_feature_rows(self.spec_id, work_ids=work_ids)
        with self._lock:
            missing = [row for row in rows if row not in self._cache]
        fetched = {
            s.row_id: (_meta(s), _stored(s)) for s in catalog.local_features_by_rows(missing)
        }
        found = []
        with self._lock:
            for row in rows:
                entry = fetched.get(row) or self._cache.get(row)
                if entry is None:
                    continue  # removed between the two reads
                self._cache[row] = entry
                self._cache.move_to_end(row)
                found.append(entry)
            while len(self._cache) > self.cache_sets:
                self._cache.popitem(last=False)
        return found

    def forget(self, rows: Iterable[int]) -> None:
        """Drop removed keypoint sets from the cache."""
        with self._lock:
            for row in rows:
                self._cache.pop(row, None)

    def verify_works(
        self,
        query: LocalFeatures,
        stored: Iterable[tuple[StoredLocalFeatures, LocalFeatures]],
        scale: tuple[float, float],
    ) -> dict[str, LocalMatch]:
        """Each work's best verified reference; ``scale`` takes the query's keypoint
        pixels to its original pixels."""
        best: dict[str, LocalMatch] = {}
        most_parts: dict[str, tuple[int, tuple[PartMatch, ...]]] = {}
        for ref, features in stored:
            result, parts = verify_parts(query, features, self.params, self.part_params)
            if parts and summed_inliers(parts) > summed_inliers(
                most_parts.get(ref.work_id, (0, ()))[1]
            ):
                most_parts[ref.work_id] = (
                    ref.reference_id,
                    tuple(PartMatch.of(p, scale) for p in parts),
                )
            current = best.get(ref.work_id)
            if current is not None and current.inliers >= result.inliers:
                continue
            if result.quad is not None:
                best[ref.work_id] = self._match(ref, result.inliers, result, scale)
            elif current is None and parts:  # parts, but no whole homography verified
                best[ref.work_id] = self._match(ref, 0, result, scale, parts[0].quad)
        return {
            work_id: dataclasses.replace(
                match,
                parts=most_parts.get(work_id, (0, ()))[1],
                part_reference_id=most_parts.get(work_id, (None, ()))[0],
            )
            for work_id, match in best.items()
        }

    @staticmethod
    def _match(
        ref: StoredLocalFeatures,
        inliers: int,
        result: Verification,
        scale: tuple[float, float],
        quad: tuple[tuple[float, float], ...] | None = None,
    ) -> LocalMatch:
        sx, sy = scale
        pairs = result.pairs.copy()
        pairs[:, 0] *= sx
        pairs[:, 1] *= sy
        outline = quad if quad is not None else result.quad
        assert outline is not None  # a verified result has its quad
        return LocalMatch(
            ref.work_id,
            ref.reference_id,
            ref.variant,
            inliers,
            result.matches,
            result.coverage,
            tuple((x * sx, y * sy) for x, y in outline),
            pairs,
            (ref.width, ref.height),
        )

    def verify_against(
        self,
        decoded: DecodedImage,
        work_ids: Sequence[str],
        catalog: Catalog,
        query: LocalFeatures | None = None,
    ) -> dict[str, LocalMatch]:
        """Verify one decoded query against the stored references of ``work_ids``."""
        if not work_ids:
            return {}
        stored = self._load(catalog, work_ids)
        if not stored:
            return {}
        features = query if query is not None else self.extract(decoded.image)
        scale = (
            decoded.width / max(1, decoded.image.width),
            decoded.height / max(1, decoded.image.height),
        )
        return self.verify_works(features, stored, scale)

    def backfill(
        self,
        catalog: Catalog,
        limits: Limits,
        work_size: int,
        over_black: Callable[[DecodedImage], Image.Image | None],
    ) -> int:
        """Extract and store the local features of references that have none under the
        current spec (registered before local features, or under another spec)."""
        missing = catalog.references_without_local(self.spec_id)
        if missing:
            log.info("extracting local features of %d stored reference(s)", len(missing))
        done = 0
        for reference_id, sha256 in missing:
            try:
                decoded = decode(catalog.blob(sha256), limits=limits, max_side=work_size)
            except ScreenerError as exc:  # a stored image gone or no longer decodable
                log.warning("reference %d: cannot extract local features: %s", reference_id, exc)
                continue
            features = self.reference_features(decoded.image, over_black(decoded))
            done += catalog.add_local(reference_id, features)
        return done


class DescriptorVotes:
    """Candidate works voted for by the query's descriptors (a descriptor-level index).

    Holds the ``per_set`` largest-scale descriptors of every stored keypoint set of one
    spec (large keypoints survive the shrinking of a pasted copy best) in memory, as
    product-quantised codes (:mod:`screener.index.descriptors`). It is built from the
    catalog at start and kept in step by :meth:`sync`, which compares row ids only and
    reads just the keypoint sets it lacks. With a ``directory``, :meth:`open` starts from
    the index saved there (a base file and the log of changes since) by :meth:`save`, so
    a start reads only the keypoint sets added since; a saved index that cannot be used
    (missing, damaged, an older format, another spec or other parameters, another
    catalog) is named in a warning and the index is built from the catalog instead.
    """

    def __init__(
        self,
        spec_id: str,
        per_set: int = 200,
        ratio: float = 0.8,
        neighbours: int = 8,
        on_removed: Callable[[list[int]], None] | None = None,
        directory: Path | None = None,
        codebook: Callable[[], Codebook] | None = None,
        layout: Layout | None = None,
    ) -> None:
        """``codebook``: the trained codebook of ``layout`` (default: the packaged one,
        see :mod:`screener.matching.codebook`)."""
        self.spec_id = spec_id
        self.on_removed = on_removed
        self.per_set = per_set
        self.ratio = ratio
        self.neighbours = neighbours
        self.layout = layout or Layout()
        self._codebook = codebook or functools.partial(
            codebook_mod.codebook, SiftExtractor(), self.layout
        )
        self.index = self._new_index(directory is not None)
        digest = hashlib.sha256(spec_id.encode()).hexdigest()[:10]
        self.path = None if directory is None else directory / f"descriptors-{digest}.index"
        self.loaded: Path | None = None  # the saved index that :meth:`open` started from
        self.sets_read = 0  # keypoint sets read from the catalog so far
        self._work_of: dict[int, str] = {}  # catalog row id of a keypoint set -> work
        self._lock = threading.Lock()
        # Held by whatever changes or saves the index (not by votes), so that a save sees
        # the index and its rows' works from the same moment.
        self._writing = threading.Lock()
        self._changes = 0  # syncs that changed something, so far
        self._saved = 0  # ... as of the last save or load

    def _new_index(self, keep_changes: bool) -> DescriptorIndex:
        return DescriptorIndex(self._codebook, keep_changes=keep_changes)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def params(self) -> dict[str, int]:
        """What the saved index must have been built with to be used."""
        return {"per_set": self.per_set}

    def open(self, catalog: Catalog) -> tuple[int, int]:
        """Start from the saved index where it can be used, then :meth:`sync`."""
        with self._writing:
            if len(self._work_of) or len(self.index):
                raise ValueError("the descriptor index is open already")
            rows = catalog.local_feature_rows(self.spec_id)
            if self.path is not None and (rows or self.path.exists()):
                why = self._load(self.path, rows)
                if why is not None:
                    self._changes += 1  # so that the next save replaces what is there
                    log.warning(
                        "descriptor index %s not used (%s); building it from the catalog "
                        "(%d keypoint sets)",
                        self.path,
                        why,
                        len(rows),
                    )
        return self.sync(catalog)

    def _load(self, path: Path, rows: dict[int, str]) -> str | None:
        """Take over the index saved at ``path``; None, or why it was not taken."""
        if not path.exists():
            return "no such file"
        try:
            loaded = stored_index.load(path, self.layout, self._codebook)
        except VectorIndexError as exc:
            return str(exc)
        doc = loaded.manifest
        if doc.get("spec_id") != self.spec_id:
            return f"made for keypoint spec {doc.get('spec_id')!r}, not {self.spec_id!r}"
        saved = {name: doc.get(name) for name in self.params}
        if saved != self.params:
            return f"built with {saved}, not {self.params}"
        if loaded.log_problem is not None:
            # The base and the good records are used; what the rest held is read from the
            # catalog by the sync that follows, and the next save compacts.
            log.warning("descriptor index %s: %s", path, loaded.log_problem)
            self._changes += 1
        work_of = loaded.index.labels
        # Row ids are never reused by one catalog: a row now of another work means that
        # the file was saved against another catalog.
        other = next((r for r, w in work_of.items() if r in rows and rows[r] != w), None)
        if other is not None:
            return (
                f"saved against another catalog (keypoint set {other} was of work "
                f"{work_of[other]!r}, the catalog says {rows[other]!r})"
            )
        with self._lock:
            self.index, self._work_of = loaded.index, work_of
        self.loaded = path
        log.info(
            "descriptor index %s loaded: %d keypoint sets (%d logged changes replayed)",
            path,
            len(work_of),
            loaded.replayed,
        )
        return None

    def save(self) -> bool:
        """Save the index if it changed since it was loaded or last saved (and there is
        a directory): the changes are appended to its log, or the base is rewritten when
        the log has grown past half of it; returns whether anything was written."""
        if self.path is None:
            return False
        with self._writing:
            if self._changes == self._saved and (self.path.exists() or not self._work_of):
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            stored_index.save(
                self.path, self.index, {"spec_id": self.spec_id, "per_set": self.per_set}
            )
            self._saved = self._changes
        return True

    def sync(
        self, catalog: Catalog, batch: int = 500, *, added_only: bool = False
    ) -> tuple[int, int]:
        """Add the keypoint sets the catalog has and the index lacks, drop those it no
        longer has; returns (added, removed). ``added_only``: look only past the last row
        known (after a registration: no full comparison of row ids)."""
        with self._writing:
            added, removed = self._sync(catalog, batch, added_only)
            if added or removed:
                self._changes += 1
        return added, removed

    def _sync(self, catalog: Catalog, batch: int, added_only: bool) -> tuple[int, int]:
        with self._lock:
            after = max(self._work_of, default=0) if added_only else 0
        current = catalog.local_feature_rows(self.spec_id, after=after)
        with self._lock:
            gone = [] if added_only else [row for row in self._work_of if row not in current]
            new = sorted(row for row in current if row not in self._work_of)
        self.index.remove(gone)
        with self._lock:
            for row in gone:
                del self._work_of[row]
        if gone and self.on_removed is not None:
            self.on_removed(gone)
        added = 0
        for start in range(0, len(new), batch):
            found = catalog.local_features_by_rows(new[start : start + batch])
            self.sets_read += len(found)
            chosen = []
            for stored in found:
                features = _stored(stored)
                keep = np.argsort(-features.points[:, 2], kind="stable")[: self.per_set]
                chosen.append((stored.row_id, features.descriptors[keep]))
            self.index.add_many(chosen, {s.row_id: s.work_id for s in found})
            with self._lock:
                self._work_of.update((stored.row_id, stored.work_id) for stored in found)
            added += len(found)
        return added, len(gone)

    def vote(self, query: LocalFeatures, top: int, min_votes: int) -> list[tuple[str, int]]:
        """Up to ``top`` works with at least ``min_votes`` votes, most votes first.

        A query descriptor votes for the work of its nearest stored descriptor when that
        is nearer, by Lowe's ratio, than the nearest descriptor of any other work.
        """
        if top <= 0 or not len(query) or not len(self.index):
            return []
        found = self.index.search(query.descriptors, self.neighbours)
        with self._lock:
            work_of = dict(self._work_of)
        votes: Counter[str] = Counter()
        squared_ratio = self.ratio * self.ratio
        for labels, distances in zip(found.labels, found.distances, strict=True):
            if labels[0] < 0 or labels[0] not in work_of:
                continue
            work = work_of[labels[0]]
            rival = next(
                (
                    float(d)
                    for label, d in zip(labels[1:], distances[1:], strict=True)
                    if label >= 0 and work_of.get(int(label)) != work
                ),
                float(distances[-1]),  # every neighbour found is this work's
            )
            if float(distances[0]) < squared_ratio * rival:
                votes[work] += 1
        return [(w, n) for w, n in votes.most_common(top) if n >= min_votes]
