"""One vector index per signal, kept in step with the catalog.

An index file records the catalog log position it reflects (its high-water mark). On
open, each index is loaded and catches up by replaying the log after that mark; an index
that is missing, corrupt or made by another spec is rebuilt from the catalog. Indexes are
caches: deleting the folder loses nothing.

With the Milvus backend (a :class:`MilvusTarget` given to :class:`IndexSet`, made from
the settings by :meth:`MilvusTarget.from_settings`; ``structure`` is then a Milvus index
type or ``auto``) each signal's index is a collection that several service instances
share. The catalog stays the truth and each instance keeps
replaying its log, so replay into the shared collection is idempotent: adds are upserts
by fingerprint id, done only for ids the collection lacks (a ``Strong`` read, which also
makes every write acknowledged before it visible to this instance's searches), and
removals delete by id. An upsert that raced a removal committed elsewhere is undone by
checking the catalog again afterwards. The collection's own high-water mark (kept in
Milvus, raised by :meth:`IndexSet.save`, never lowered) is where a starting instance
begins its replay; a count that still disagrees with the catalog after the replay (a
writer that died between its commit and its upsert) is repaired by comparing ids.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener import index as vindex
from screener.core.errors import ConfigurationError
from screener.core.settings import Settings
from screener.index import IndexSpec, Neighbours, VectorIndex
from screener.index.milvus import BINARY_STRUCTURES, CONSISTENCY_LEVELS, DENSE_STRUCTURES
from screener.matching.signals import stored_matrix
from screener.models import Fingerprinter
from screener.store.catalog import Catalog

log = logging.getLogger(__name__)

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

Progress = Callable[[int], None]

#: After a bulk load of at least this many rows into Milvus (rebuild, import), the rows
#: are sealed and served from indexed segments before the command returns: searches
#: scan growing segments by brute force, seconds per check at 100k rows.
BULK_FLUSH_ROWS = 10_000


def spec_of(fingerprinter: Fingerprinter) -> IndexSpec:
    metric: vindex.Metric = "hamming" if fingerprinter.kind == "binary" else "ip"
    return IndexSpec(fingerprinter.spec_id, fingerprinter.dim, metric)


def decode_vectors(spec: IndexSpec, blobs: list[bytes]) -> npt.NDArray[Any]:
    """Stored vector bytes back to the matrix an index takes."""
    binary = spec.metric == "hamming"
    return stored_matrix(blobs, binary, spec.dim // 8 if binary else spec.dim)


def backend_of(settings: Settings) -> str:
    """The index backend the settings choose: the one ``index_structure`` names before its
    colon (``milvus:HNSW``, ``faiss:IVF1024,Flat``), else ``index_backend``.

    Raises `ConfigurationError` where the two name different backends, or the string names
    none that is registered.
    """
    head, colon, _ = settings.index_structure.partition(":")
    try:
        named, _ = vindex.parse(settings.index_structure)
    except ValueError as exc:
        raise ConfigurationError(f"index_structure: {exc}") from exc
    if not (colon and head == named):
        return settings.index_backend
    if "index_backend" in settings.model_fields_set and settings.index_backend != named:
        raise ConfigurationError(
            f"index_structure {settings.index_structure!r} is a {named} index, but "
            f"index_backend is {settings.index_backend!r}: drop one of the two"
        )
    return named


@dataclass(frozen=True)
class MilvusTarget:
    """Where and how the Milvus backend's collections live.

    ``prefix`` starts every collection name (``<prefix>_<signal>_<spec digest>``), so
    that installations sharing one server stay apart; ``consistency`` is the level of
    searches (docs/deploy.md).
    """

    uri: str
    token: str | None = None
    prefix: str = "screener"
    consistency: str = "Session"

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not self.uri.strip():
            raise ConfigurationError(
                "the milvus backend needs a server URI (SCREENER_MILVUS_URI), "
                "e.g. http://127.0.0.1:19530"
            )
        if not _PREFIX.fullmatch(self.prefix):
            raise ConfigurationError(
                f"milvus collection prefix {self.prefix!r} must be a letter or underscore "
                "followed by up to 63 letters, digits or underscores"
            )
        if self.consistency not in CONSISTENCY_LEVELS:
            raise ConfigurationError(
                f"milvus consistency {self.consistency!r} is not one of {list(CONSISTENCY_LEVELS)}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> MilvusTarget | None:
        """The target ``settings`` name, or None with another backend (faiss by default)."""
        if backend_of(settings) != "milvus":
            return None
        if not settings.milvus_uri:
            raise ConfigurationError("SCREENER_INDEX_BACKEND=milvus needs SCREENER_MILVUS_URI")
        return cls(
            settings.milvus_uri,
            settings.milvus_token,
            settings.milvus_collection_prefix,
            settings.milvus_consistency,
        )


@dataclass(frozen=True)
class IndexReport:
    signal: str
    spec_id: str
    kind: str
    count: int
    catalog_count: int
    missing: int
    extra: int
    high_water: int

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.extra == 0


class IndexSet:
    """The indexes of every available signal, with catch-up, save, rebuild and verify."""

    def __init__(
        self,
        catalog: Catalog,
        fingerprinters: Mapping[str, Fingerprinter],
        directory: Path,
        structure: str = "auto",
        milvus: MilvusTarget | None = None,
    ) -> None:
        if milvus is not None and not isinstance(milvus, MilvusTarget):
            raise ConfigurationError(f"milvus must be a MilvusTarget, got {milvus!r}")
        self.catalog = catalog
        self.directory = directory
        named, bare = vindex.parse(structure)
        if named == "milvus" and milvus is None:
            raise ConfigurationError(
                f"index structure {structure!r} needs a Milvus server (SCREENER_MILVUS_URI)"
            )
        # A Milvus index type without its backend's name (``HNSW``, ``auto``), as
        # `_milvus_structure` reads it; FAISS strings pass as written (`vindex.create`).
        self.structure = bare if named == "milvus" else structure
        self.specs = {name: spec_of(f) for name, f in fingerprinters.items()}
        self.milvus = milvus
        self.indexes: dict[str, VectorIndex] = {}
        self.marks: dict[str, int] = {}
        self._dirty: set[str] = set()

    def path(self, signal: str) -> Path:
        digest = hashlib.sha256(self.specs[signal].spec_id.encode()).hexdigest()[:10]
        return self.directory / f"{signal}-{digest}.index"

    def collection(self, signal: str) -> str:
        """The Milvus collection of ``signal`` (its spec digest keeps specs apart)."""
        assert self.milvus is not None
        digest = hashlib.sha256(self.specs[signal].spec_id.encode()).hexdigest()[:10]
        return f"{self.milvus.prefix}_{signal}_{digest}"

    def _fresh(self, signal: str) -> VectorIndex:
        spec = self.specs[signal]
        expected = len(self.catalog.fingerprint_ids(signal, spec.spec_id))
        if self.milvus is not None:
            return self._attach(signal, expected)
        return vindex.create(spec, self.structure, expected_size=expected)

    def _milvus_structure(self, signal: str) -> str:
        """``structure`` for ``signal``'s collection: a dense type (HNSW, ...) applies to
        dense signals and a binary one to hashes; the other kind of signal takes ``auto``."""
        dense = self.specs[signal].metric == "ip"
        if self.structure in DENSE_STRUCTURES and not dense:
            return "auto"
        if self.structure in BINARY_STRUCTURES and dense:
            return "auto"
        return self.structure

    def _attach(self, signal: str, expected: int) -> vindex.MilvusIndex:
        """The shared collection of ``signal``, made if it does not exist yet."""
        target = self.milvus
        assert target is not None
        try:
            return vindex.MilvusIndex(
                self.specs[signal],
                self._milvus_structure(signal),
                uri=target.uri,
                token=target.token,
                collection=self.collection(signal),
                consistency=target.consistency,
                expected_size=expected,
            )
        except (vindex.VectorIndexError, ValueError) as exc:
            raise ConfigurationError(f"milvus index for {signal}: {exc}") from exc

    def open(self) -> int:
        """Load every index and replay the catalog log; returns log entries applied."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.milvus is not None:
            return self._open_shared()
        applied = 0
        for signal, spec in self.specs.items():
            path = self.path(signal)
            if path.exists():
                try:
                    loaded, manifest = vindex.load(path, spec)
                    self.indexes[signal], self.marks[signal] = loaded, manifest.high_water
                except vindex.VectorIndexError as exc:
                    log.warning("index %s unusable (%s); rebuilding from the catalog", path, exc)
                    self.rebuild(signal)
                    continue
            else:
                self.indexes[signal], self.marks[signal] = self._fresh(signal), 0
            applied += self.catch_up(signal)
        return applied

    def _open_shared(self) -> int:
        applied = 0
        for signal, spec in self.specs.items():
            expected = len(self.catalog.fingerprint_ids(signal, spec.spec_id))
            index = self._attach(signal, expected)
            self.indexes[signal], self.marks[signal] = index, index.high_water
            applied += self.catch_up(signal)
            if len(index) != len(self.catalog.fingerprint_ids(signal, spec.spec_id)):
                log.warning("milvus %s disagrees with the catalog; repairing", index.collection)
                self._reconcile(signal)
        return applied

    def _reconcile(self, signal: str, progress: Progress | None = None) -> int:
        """Make a shared index hold exactly the catalog's fingerprints; returns its size.

        The index's ids are read first: writers commit to the catalog before the index,
        so an id the index has and the catalog lacks was removed, never not yet added.
        """
        index, spec = self.indexes[signal], self.specs[signal]
        have = set(index.ids().tolist())
        want: set[int] = set()
        for batch in self.catalog.iter_fingerprints(signal, spec.spec_id):
            want.update(i for i, _ in batch)
            new = [(i, v) for i, v in batch if i not in have]
            if new:
                index.add(
                    np.asarray([i for i, _ in new], dtype=np.int64),
                    decode_vectors(spec, [v for _, v in new]),
                )
            if progress:
                progress(len(batch))
        extra = have - want
        if extra:
            index.remove(np.asarray(sorted(extra), dtype=np.int64))
        return len(want)

    def _replay_shared(
        self, name: str, index: vindex.MilvusIndex, gone: list[int], wanted: list[int]
    ) -> None:
        """Apply removals and additions to a shared index, idempotently."""
        if gone:
            index.remove(np.asarray(gone, dtype=np.int64))
        stored = self.catalog.fingerprints_by_id(wanted)
        if not stored:
            return
        held = set(index.present(np.asarray([f.id for f in stored], dtype=np.int64)).tolist())
        new = [f for f in stored if f.id not in held]
        if not new:
            return
        ids = np.asarray([f.id for f in new], dtype=np.int64)
        index.add(ids, decode_vectors(self.specs[name], [f.vector for f in new]))
        # A removal committed elsewhere after our read would be undone by that upsert.
        still = self.catalog.owners(ids.tolist())
        stale = [int(i) for i in ids if int(i) not in still]
        if stale:
            index.remove(np.asarray(stale, dtype=np.int64))

    def catch_up(self, signal: str | None = None) -> int:
        """Apply catalog log entries newer than each index's mark."""
        applied = 0
        for name in [signal] if signal else list(self.indexes):
            spec = self.specs[name]
            entries = self.catalog.log_since(name, spec.spec_id, self.marks[name])
            if not entries:
                continue
            final: dict[int, str] = {}
            for entry in entries:  # the last operation on an id wins
                final[entry.fingerprint_id] = entry.op
            gone = [fid for fid, op in final.items() if op == "remove"]
            wanted = [fid for fid, op in final.items() if op == "add"]
            index = self.indexes[name]
            if isinstance(index, vindex.MilvusIndex):
                self._replay_shared(name, index, gone, wanted)
                self.marks[name] = entries[-1].seq
                self._dirty.add(name)
                applied += len(entries)
                continue
            if gone:
                self.indexes[name].remove(np.asarray(gone, dtype=np.int64))
            wanted = [fid for fid, op in final.items() if op == "add"]
            stored = self.catalog.fingerprints_by_id(wanted)
            if stored:
                self.indexes[name].add(
                    np.asarray([f.id for f in stored], dtype=np.int64),
                    decode_vectors(spec, [f.vector for f in stored]),
                )
            self.marks[name] = entries[-1].seq
            self._dirty.add(name)
            applied += len(entries)
        return applied

    def rebuild(self, signal: str, progress: Progress | None = None) -> int:
        """Build one index afresh from the catalog; returns its size."""
        spec = self.specs[signal]
        mark = self.catalog.high_water()
        if self.milvus is not None:
            # A shared collection is repaired in place: other instances keep searching it.
            if signal not in self.indexes:
                self.indexes[signal] = self._fresh(signal)
            before = len(self.indexes[signal])
            size = self._reconcile(signal, progress)
            index = self.indexes[signal]
            if size - before >= BULK_FLUSH_ROWS and isinstance(index, vindex.MilvusIndex):
                index.flush()
            self._install(signal, index, mark)
            return size
        fresh = self._fresh(signal)
        for batch in self.catalog.iter_fingerprints(signal, spec.spec_id):
            fresh.add(
                np.asarray([i for i, _ in batch], dtype=np.int64),
                decode_vectors(spec, [v for _, v in batch]),
            )
            if progress:
                progress(len(batch))
        self._install(signal, fresh, mark)
        return len(fresh)

    def _install(self, signal: str, index: VectorIndex, mark: int) -> None:
        """Put ``index`` in place as of log position ``mark``, replay on top the entries
        written since (while it was built from the catalog), and save it."""
        self.indexes[signal], self.marks[signal] = index, mark
        self.catch_up(signal)
        self._dirty.add(signal)
        self.save()

    def replace(
        self,
        signal: str,
        batches: Iterable[tuple[npt.NDArray[np.int64], npt.NDArray[Any]]],
        mark: int,
        progress: Progress | None = None,
    ) -> int:
        """Make ``signal``'s index hold exactly the fingerprints of ``batches`` as of log
        position ``mark``, then replay the catalog's log after it; returns its size.

        The caller has checked the fingerprints against the catalog
        (``screener.matching.index_archive``).
        A FAISS index is built aside and swapped in; a shared Milvus collection is changed
        in place (missing ids upserted, others deleted), so other instances keep searching.
        """
        spec = self.specs[signal]
        if self.milvus is not None:
            index = self.indexes[signal] if signal in self.indexes else self._fresh(signal)
            held = index.ids()
            have = set(held.tolist())
            seen: set[int] = set()
            for ids, vectors in batches:
                seen.update(ids.tolist())
                new = ~np.isin(ids, held)
                if new.any():
                    index.add(ids[new], vectors[new])
                if progress:
                    progress(len(ids))
            extra = have - seen
            if extra:
                index.remove(np.asarray(sorted(extra), dtype=np.int64))
            if len(seen - have) >= BULK_FLUSH_ROWS and isinstance(index, vindex.MilvusIndex):
                index.flush()
        else:
            expected = len(self.catalog.fingerprint_ids(signal, spec.spec_id))
            index = vindex.create(spec, self.structure, expected_size=expected)
            for ids, vectors in batches:
                index.add(ids, vectors)
                if progress:
                    progress(len(ids))
        self._install(signal, index, mark)
        return len(index)

    def save(self) -> None:
        """Write every changed index (temporary file, then rename)."""
        for name in sorted(self._dirty):
            self.indexes[name].save(self.path(name), high_water=self.marks[name])
        self._dirty.clear()

    def search(
        self, signal: str, vectors: npt.NDArray[Any], k: int | None, radius: float | None = None
    ) -> Neighbours:
        return self.indexes[signal].search(vectors, k=k, radius=radius)

    def verify(self) -> list[IndexReport]:
        """Compare each index's ids with the catalog's fingerprints."""
        reports = []
        for name, idx in self.indexes.items():
            spec = self.specs[name]
            have = set(idx.ids().tolist())
            want = set(self.catalog.fingerprint_ids(name, spec.spec_id))
            reports.append(
                IndexReport(
                    name,
                    spec.spec_id,
                    idx.kind,
                    len(idx),
                    len(want),
                    len(want - have),
                    len(have - want),
                    self.marks[name],
                )
            )
        return reports

    def version(self) -> str:
        """Which catalog state the indexes reflect, e.g. ``catalog@42``."""
        return f"catalog@{min(self.marks.values(), default=0)}"

    def sizes(self) -> dict[str, int]:
        return {name: len(idx) for name, idx in self.indexes.items()}
