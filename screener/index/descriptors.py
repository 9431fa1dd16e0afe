"""An approximate nearest-neighbour index over local descriptors (SIFT, 128 bytes each).

Each descriptor carries an owner label (the screener uses the catalog row of the
reference's keypoints). A query image's descriptors are searched at once; the nearest
neighbours, with their labels and squared distances, are what a caller votes with.

The descriptors are stored as their own bytes (8-bit codes, no training) in an HNSW
graph, which takes additions at any time but no removals: a removed owner's rows are
hidden (a tombstone) and the graph is rebuilt from the live rows once the hidden ones
outnumber them. :func:`save` writes the whole state (the graph, whose 8-bit storage holds
the codes, the owner of every row and the live owners) to one file and a manifest with its
sha256, as the vector indexes are saved; :func:`load` reads it back or raises
``IndexCorrupt``, and the owner catches up from where the descriptors are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index._faiss import faiss
from screener.index._persist import Arrays, read_document, write_document
from screener.index.base import IndexCorrupt

DIM = 128
FORMAT_VERSION = 1
KIND = "descriptors:HNSW,SQ8"
#: The arrays :meth:`DescriptorIndex.state` fills; a caller's own arrays take other names.
STATE = frozenset({"graph", "owners", "live"})


@dataclass(frozen=True)
class Neighbours:
    """For each query descriptor, its ``k`` nearest live descriptors: owner labels
    (-1 where fewer were found) and squared L2 distances, nearest first."""

    labels: npt.NDArray[np.int64]  # (n, k)
    distances: npt.NDArray[np.float32]  # (n, k)


class DescriptorIndex:
    """HNSW over 8-bit descriptors with per-owner addition and removal."""

    def __init__(self, links: int = 16, search_depth: int = 64) -> None:
        self.links = links
        self.search_depth = search_depth
        self._lock = threading.RLock()
        self._owners: list[npt.NDArray[np.int64]] = []  # owner label of every stored row
        self._codes: list[npt.NDArray[np.uint8]] = []  # kept to rebuild without the dead
        self._live: set[int] = set()
        self._dead_rows = 0
        self._flat_owners: npt.NDArray[np.int64] | None = None  # _owners joined, for search
        self._graph: Any = self._new_graph()

    def _new_graph(self) -> Any:
        graph = faiss.IndexHNSWSQ(DIM, faiss.ScalarQuantizer.QT_8bit_direct, self.links)
        graph.hnsw.efSearch = self.search_depth
        return graph

    def __len__(self) -> int:
        """Live descriptors."""
        with self._lock:
            return self._rows() - self._dead_rows

    def _rows(self) -> int:
        return sum(len(o) for o in self._owners)

    @property
    def owners(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._live)

    def add(self, owner: int, descriptors: npt.NDArray[np.uint8]) -> None:
        """Store one owner's descriptors ((n, 128) uint8); an owner is added once."""
        self.add_many([(owner, descriptors)])

    def add_many(self, items: Iterable[tuple[int, npt.NDArray[np.uint8]]]) -> None:
        """Store several owners' descriptors in one insertion (much faster than one by
        one: the graph inserts a batch in parallel). Nothing is stored if one is bad."""
        batch = []
        for owner, descriptors in items:
            codes = np.ascontiguousarray(descriptors, dtype=np.uint8)
            if codes.ndim != 2 or codes.shape[1] != DIM:
                raise ValueError(f"descriptors must be (n, {DIM}) bytes, got {codes.shape}")
            batch.append((owner, codes))
        owners = [owner for owner, _ in batch]
        with self._lock:
            again = sorted(set(owners) & self._live) or sorted(
                o for o in set(owners) if owners.count(o) > 1
            )
            if again:
                raise ValueError(f"owner {again[0]} is already in the descriptor index")
            self._live.update(owners)
            filled = [(owner, codes) for owner, codes in batch if len(codes)]
            if not filled:
                return
            codes = np.concatenate([c for _, c in filled])
            self._graph.add(codes.astype(np.float32))
            self._owners.append(
                np.concatenate([np.full(len(c), o, dtype=np.int64) for o, c in filled])
            )
            self._codes.append(codes)
            self._flat_owners = None

    def remove(self, owners: Iterable[int]) -> int:
        """Hide every descriptor of ``owners``; returns how many owners were present."""
        with self._lock:
            gone = {o for o in owners if o in self._live}
            if not gone:
                return 0
            self._live -= gone
            self._dead_rows += sum(int(np.isin(o, list(gone)).sum()) for o in self._owners)
            if self._dead_rows > self._rows() - self._dead_rows:
                self._rebuild()
            return len(gone)

    def _rebuild(self) -> None:
        owners = np.concatenate(self._owners) if self._owners else np.zeros(0, np.int64)
        codes = np.concatenate(self._codes) if self._codes else np.zeros((0, DIM), np.uint8)
        keep = np.isin(owners, list(self._live))
        self._graph = self._new_graph()
        self._owners, self._codes, self._dead_rows = [], [], 0
        self._flat_owners = None
        if keep.any():
            self._graph.add(codes[keep].astype(np.float32))
            self._owners.append(owners[keep])
            self._codes.append(codes[keep])

    def state(self) -> Arrays:
        """What :meth:`from_state` rebuilds this index from, tombstones included."""
        with self._lock:
            owners = np.concatenate(self._owners) if self._owners else np.zeros(0, np.int64)
            return {
                "graph": np.asarray(faiss.serialize_index(self._graph), dtype=np.uint8),
                "owners": owners,
                "live": np.asarray(sorted(self._live), dtype=np.int64),
            }

    @classmethod
    def from_state(cls, arrays: Arrays, links: int = 16, search_depth: int = 64) -> DescriptorIndex:
        """The index :meth:`state` described; ``ValueError`` saying what does not fit."""
        missing = sorted(STATE - arrays.keys())
        if missing:
            raise ValueError(f"no {', '.join(missing)} saved")
        owners, live = arrays["owners"], arrays["live"]
        if owners.dtype != np.int64 or owners.ndim != 1:
            raise ValueError(f"owners must be a row of int64, got {owners.dtype} {owners.shape}")
        if live.dtype != np.int64 or live.ndim != 1 or len(np.unique(live)) != len(live):
            raise ValueError("live owners must be a row of distinct int64")
        try:
            graph = faiss.deserialize_index(np.ascontiguousarray(arrays["graph"], np.uint8))
        except RuntimeError as e:
            raise ValueError(f"the graph cannot be read: {e}") from e
        if not isinstance(graph, faiss.IndexHNSWSQ) or graph.d != DIM:
            raise ValueError(f"the graph is not an HNSW over {DIM} 8-bit codes")
        storage = faiss.downcast_index(graph.storage)
        if storage.sq.qtype != faiss.ScalarQuantizer.QT_8bit_direct:
            raise ValueError("the graph does not store 8-bit codes")
        if graph.hnsw.nb_neighbors(1) != links:
            raise ValueError(f"the graph has {graph.hnsw.nb_neighbors(1)} links, not {links}")
        if graph.ntotal != len(owners):
            raise ValueError(f"the graph holds {graph.ntotal} rows, the owners {len(owners)}")
        index = cls(links, search_depth)
        graph.hnsw.efSearch = search_depth
        index._graph = graph
        index._live = {int(o) for o in live}
        if len(owners):
            # The codes to rebuild from are those the graph stores, not a second copy.
            codes = faiss.vector_to_array(storage.codes).reshape(len(owners), DIM)
            index._owners, index._codes = [owners], [codes]
            index._dead_rows = int((~np.isin(owners, live)).sum())
        return index

    def search(self, descriptors: npt.NDArray[np.uint8], k: int) -> Neighbours:
        """The ``k`` nearest live descriptors of each query descriptor."""
        queries = np.ascontiguousarray(descriptors, dtype=np.uint8).reshape(-1, DIM)
        n = len(queries)
        labels = np.full((n, k), -1, dtype=np.int64)
        distances = np.full((n, k), np.inf, dtype=np.float32)
        with self._lock:
            rows = self._rows()
            if not n or not rows or not self._live:
                return Neighbours(labels, distances)
            if self._flat_owners is None:
                self._flat_owners = np.concatenate(self._owners)
            owners = self._flat_owners
            # Ask for more than k while dead rows are present, so that k live ones remain.
            wanted = min(rows, k if not self._dead_rows else 4 * k)
            found_d, found_i = self._graph.search(queries.astype(np.float32), wanted)
        found_owner = np.where(found_i >= 0, owners[np.clip(found_i, 0, None)], -1)
        if self._dead_rows:
            alive = np.isin(found_owner, list(self._live))
            found_owner = np.where(alive, found_owner, -1)
        for row in range(n):
            keep = found_owner[row] >= 0
            chosen_owner = found_owner[row][keep][:k]
            labels[row, : len(chosen_owner)] = chosen_owner
            distances[row, : len(chosen_owner)] = found_d[row][keep][:k]
        return Neighbours(labels, distances)


def save(
    path: Path, index: DescriptorIndex, meta: dict[str, Any], arrays: Arrays | None = None
) -> dict[str, Any]:
    """Save ``index`` (and a caller's own ``arrays``) at ``path`` with a manifest holding
    ``meta``, the index's parameters and the sha256 of the file; a crash leaves the old
    save, the new one, or one that :func:`load` refuses. Returns the manifest."""
    own = arrays or {}
    clash = sorted(STATE & own.keys())
    if clash:
        raise ValueError(f"array names {clash} are the index's own")
    state = index.state()
    doc = {
        **meta,
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "dim": DIM,
        "links": index.links,
        "rows": len(state["owners"]),
        "count": len(index),
    }
    return write_document(Path(path), doc, {**own, **state})


def load(
    path: Path, links: int = 16, search_depth: int = 64
) -> tuple[DescriptorIndex, dict[str, Any], Arrays]:
    """The index saved at ``path`` (which must have been built with ``links``), its
    manifest and the caller's own arrays saved with it. ``IndexCorrupt`` saying why when
    either file is missing, damaged, of another format or built otherwise."""
    path = Path(path)
    doc, arrays = read_document(path)
    for name, wanted in (("format_version", FORMAT_VERSION), ("kind", KIND), ("dim", DIM)):
        if doc.get(name) != wanted:
            raise IndexCorrupt(f"index {path} has {name} {doc.get(name)!r}, not {wanted!r}")
    if doc.get("links") != links:
        raise IndexCorrupt(f"index {path} was built with {doc.get('links')!r} links, not {links}")
    try:
        index = DescriptorIndex.from_state(arrays, links, search_depth)
    except ValueError as e:
        raise IndexCorrupt(f"index {path} cannot be restored: {e}") from e
    if len(index) != doc.get("count"):
        raise IndexCorrupt(
            f"index {path} holds {len(index)} descriptors, its manifest says {doc.get('count')!r}"
        )
    return index, doc, {name: a for name, a in arrays.items() if name not in STATE}
