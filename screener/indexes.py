"""One vector index per signal, kept in step with the catalog.

An index file records the catalog log position it reflects (its high-water mark). On
open, each index is loaded and catches up by replaying the log after that mark; an index
that is missing, corrupt or made by another spec is rebuilt from the catalog. Indexes are
caches: deleting the folder loses nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import index as vindex
from index import IndexSpec, Neighbours, VectorIndex
from models import Fingerprinter
from screener.catalog import Catalog

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


def spec_of(fingerprinter: Fingerprinter) -> IndexSpec:
    metric: vindex.Metric = "hamming" if fingerprinter.kind == "binary" else "ip"
    return IndexSpec(fingerprinter.spec_id, fingerprinter.dim, metric)


def decode_vectors(spec: IndexSpec, blobs: list[bytes]) -> npt.NDArray[Any]:
    """Stored vector bytes back to the matrix an index takes."""
    if spec.metric == "hamming":
        return np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), spec.dim // 8)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), spec.dim)


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
    ) -> None:
        self.catalog = catalog
        self.directory = directory
        self.structure = structure
        self.specs = {name: spec_of(f) for name, f in fingerprinters.items()}
        self.indexes: dict[str, VectorIndex] = {}
        self.marks: dict[str, int] = {}
        self._dirty: set[str] = set()

    def path(self, signal: str) -> Path:
        digest = hashlib.sha256(self.specs[signal].spec_id.encode()).hexdigest()[:10]
        return self.directory / f"{signal}-{digest}.index"

    def _fresh(self, signal: str) -> VectorIndex:
        spec = self.specs[signal]
        expected = len(self.catalog.fingerprint_ids(signal, spec.spec_id))
        return vindex.create(spec, self.structure, expected_size=expected)

    def open(self) -> int:
        """Load every index and replay the catalog log; returns log entries applied."""
        self.directory.mkdir(parents=True, exist_ok=True)
        applied = 0
        for signal, spec in self.specs.items():
            path = self.path(signal)
            if path.exists():
                try:
                    loaded, manifest = vindex.load(path, spec)
                    self.indexes[signal], self.marks[signal] = loaded, manifest.high_water
                except vindex.IndexError_ as exc:
                    log.warning("index %s unusable (%s); rebuilding from the catalog", path, exc)
                    self.rebuild(signal)
                    continue
            else:
                self.indexes[signal], self.marks[signal] = self._fresh(signal), 0
            applied += self.catch_up(signal)
        return applied

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
        fresh = self._fresh(signal)
        for batch in self.catalog.iter_fingerprints(signal, spec.spec_id):
            fresh.add(
                np.asarray([i for i, _ in batch], dtype=np.int64),
                decode_vectors(spec, [v for _, v in batch]),
            )
            if progress:
                progress(len(batch))
        self.indexes[signal], self.marks[signal] = fresh, mark
        # Entries written while the rebuild read the catalog are replayed on top.
        self.catch_up(signal)
        self._dirty.add(signal)
        self.save()
        return len(fresh)

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
