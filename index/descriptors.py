"""An approximate nearest-neighbour index over local descriptors (SIFT, 128 bytes each).

Each descriptor carries an owner label (the screener uses the catalog row of the
reference's keypoints). A query image's descriptors are searched at once; the nearest
neighbours, with their labels and squared distances, are what a caller votes with.

The descriptors are stored as their own bytes (8-bit codes, no training) in an HNSW
graph, which takes additions at any time but no removals: a removed owner's rows are
hidden (a tombstone) and the graph is rebuilt from the live rows once the hidden ones
outnumber them. The index lives in memory only; its owner rebuilds it from where the
descriptors are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from index._faiss import faiss

DIM = 128


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
