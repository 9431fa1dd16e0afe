"""The check-fingerprint index: the stored fingerprints of released (allowed) checks, one
vector index per signal, so that a notice finds the outputs that may copy its work by a
nearest-neighbour search instead of re-scoring every output ever released.

The ``check_fingerprints`` table is the truth and this index is derived from it, as the
reference indexes are derived from the catalog. An index file records the highest row id
it holds (its high-water mark); on open, and before every search, it catches up with the
rows written since. Row ids only grow (the table never reuses them), so a catch-up reads
the rows past the mark. Rows aged out by retention are removed from the index after the
table; a crash in between leaves ids the table no longer has, which searches drop (they
are resolved through the table) and the next open repairs by a rebuild, as it does for a
file that is missing, damaged or made for another model spec. Files are written with the
index layer's save discipline (temporary file, fsync, rename).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from screener import index as vindex
from screener.core.policy import NoticeSearch
from screener.index import IndexSpec, VectorIndex
from screener.matching.signal_indexes import decode_vectors, spec_of
from screener.models import Fingerprinter
from screener.store.catalog import Catalog
from screener.store.check_records import CheckFingerprintRow

log = logging.getLogger(__name__)

_BATCH = 20_000


class CheckIndex:
    """Per signal, a vector index over the ids of ``check_fingerprints`` rows."""

    def __init__(
        self,
        engine: Engine,
        fingerprinters: Mapping[str, Fingerprinter],
        directory: Path,
        structure: str = "auto",
    ) -> None:
        self.engine = engine
        self.directory = directory
        self.structure = structure
        self.specs = {name: spec_of(f) for name, f in fingerprinters.items()}
        self.indexes: dict[str, VectorIndex] = {}
        self.marks: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._lock = threading.RLock()

    def path(self, signal: str) -> Path:
        digest = hashlib.sha256(self.specs[signal].spec_id.encode()).hexdigest()[:10]
        return self.directory / f"checks-{signal}-{digest}.index"

    # reading the table ----------------------------------------------------------------------

    def _rows(self, after: int) -> Iterator[list[tuple[int, str, str, bytes]]]:
        """Rows past ``after`` by row id alone: a filter on the signal would let SQLite
        walk the signal's index over every row ever stored, whatever ``after`` is."""
        while True:
            with Session(self.engine) as session:
                batch = [
                    (int(i), str(signal), str(spec), bytes(v))
                    for i, signal, spec, v in session.execute(
                        select(
                            CheckFingerprintRow.id,
                            CheckFingerprintRow.signal,
                            CheckFingerprintRow.spec_id,
                            CheckFingerprintRow.vector,
                        )
                        .where(CheckFingerprintRow.id > after)
                        .order_by(CheckFingerprintRow.id)
                        .limit(_BATCH)
                    )
                ]
            if not batch:
                return
            after = batch[-1][0]
            yield batch

    def stored_count(self, signal: str) -> int:
        """How many rows of ``signal`` (made by its current spec) the table holds."""
        with Session(self.engine) as session:
            found = session.scalar(
                select(func.count()).where(
                    CheckFingerprintRow.signal == signal,
                    CheckFingerprintRow.spec_id == self.specs[signal].spec_id,
                )
            )
        return int(found or 0)

    # keeping in step ------------------------------------------------------------------------

    def open(self) -> int:
        """Load (or rebuild) every signal's index and catch up; returns rows added."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            for signal, spec in self.specs.items():
                path = self.path(signal)
                self.indexes[signal], self.marks[signal] = self._empty(signal), 0
                if path.exists():
                    try:
                        loaded, manifest = vindex.load(path, spec)
                    except vindex.VectorIndexError as exc:
                        log.warning("check index %s unusable (%s); rebuilding", path, exc)
                        continue  # filled from the table by the catch-up below
                    self.indexes[signal], self.marks[signal] = loaded, manifest.high_water
            added = self.catch_up()
            for signal in self.specs:
                if len(self.indexes[signal]) != self.stored_count(signal):
                    # Rows aged out while the index kept them (a crash in between).
                    log.warning("check index of %s disagrees with its table; rebuilding", signal)
                    added += self.rebuild(signal)
            self.save()
            return added

    def _empty(self, signal: str, expected: int = 0) -> VectorIndex:
        return vindex.create(self.specs[signal], self.structure, expected_size=expected)

    def catch_up(self, signal: str | None = None) -> int:
        """Add the rows written since each index's mark (one pass over them for every
        signal); returns how many."""
        with self._lock:
            names = [signal] if signal else list(self.indexes)
            return self._fill({name: self.indexes[name] for name in names})

    def _fill(self, targets: dict[str, VectorIndex]) -> int:
        if not targets:
            return 0
        added = 0
        for batch in self._rows(min(self.marks.get(name, 0) for name in targets)):
            for name, index in targets.items():
                spec, mark = self.specs[name], self.marks.get(name, 0)
                rows = [(i, v) for i, s, sp, v in batch if s == name and sp == spec.spec_id]
                rows = [(i, v) for i, v in rows if i > mark]
                if rows:
                    index.add(
                        np.asarray([i for i, _ in rows], dtype=np.int64),
                        decode_vectors(spec, [v for _, v in rows]),
                    )
                    added += len(rows)
                    self._dirty.add(name)
                # Every row up to the batch's last id has been seen, this signal's or not.
                self.marks[name] = max(mark, batch[-1][0])
        return added

    def rebuild(self, signal: str) -> int:
        """Build ``signal``'s index afresh from the table and save it; returns its size."""
        with self._lock:
            self.marks[signal] = 0
            fresh = self._empty(signal, self.stored_count(signal))
            self._fill({signal: fresh})
            self.indexes[signal] = fresh
            self._dirty.add(signal)
            self.save()
            return len(fresh)

    def remove(self, signal: str, ids: Iterable[int]) -> int:
        """Drop ids (rows the table no longer has) from ``signal``'s index."""
        wanted = np.asarray(sorted(set(ids)), dtype=np.int64)
        if signal not in self.indexes or not len(wanted):
            return 0
        with self._lock:
            removed = self.indexes[signal].remove(wanted)
            self._dirty.add(signal)
            return removed

    def save(self) -> None:
        """Write every changed index (temporary file, then rename)."""
        with self._lock:
            for name in sorted(self._dirty):
                self.indexes[name].save(self.path(name), high_water=self.marks.get(name, 0))
            self._dirty.clear()

    # searching ------------------------------------------------------------------------------

    def search(
        self, signal: str, queries: npt.NDArray[Any], k: int, radius: float | None
    ) -> set[int]:
        """Row ids of ``signal``'s stored fingerprints near any of ``queries``: within
        ``radius`` (inner product at least it, Hamming distance at most it) and among each
        query's ``k`` nearest."""
        with self._lock:
            index = self.indexes.get(signal)
            if index is None or not len(index) or not len(queries):
                return set()
            found = index.search(queries, k=k if radius is None else None, radius=radius)
        return {int(i) for ids in found.ids for i in ids[:k]}

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {name: len(index) for name, index in self.indexes.items()}

    def spec(self, signal: str) -> IndexSpec:
        return self.specs[signal]


def near_work(index: CheckIndex, catalog: Catalog, work_id: str, search: NoticeSearch) -> set[int]:
    """Row ids of stored check fingerprints near any reference fingerprint of ``work_id``
    (the policy's ``notices`` radius and neighbour count), after a catch-up with the table."""
    index.catch_up()
    found: set[int] = set()
    for signal, spec in index.specs.items():
        stored = catalog.fingerprints_of_works([work_id], signal, spec.spec_id)
        if not stored:
            continue
        queries = decode_vectors(spec, [f.vector for f in stored])
        found |= index.search(signal, queries, search.neighbours, search.radius.get(signal))
    return found
