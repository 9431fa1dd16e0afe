"""Two ways of keeping our int64 ids inside a faiss structure.

``IdStore`` is for structures that can delete, where faiss's labels *are* our ids and
``remove_ids`` really frees rows: Flat and binary Flat inside an ``IndexIDMap2``, and IVF
bare, since IVF stores ids in its lists itself. (IVF must not go inside an ``IndexIDMap2``:
its ``remove_ids`` compacts the id map as if the inner index shifted its rows down, which
IVF does not, and every later answer is mislabelled.)

``TombstoneStore`` is for structures that cannot delete (HNSW, binary multi-index hashing).
Their faiss labels are row positions 0..n-1 and a ``LabelMap`` maps positions to ids and
marks removed rows dead. Re-adding an id kills its old row and appends a new one, so a dead
copy can never answer for a live id. Dead rows stay in the structure, are masked at search
time, and once they outnumber the live rows (and exceed ``compact_min``) the structure is
rebuilt from the live vectors, so tombstones cannot pile up forever.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index._faiss import faiss
from screener.index._results import Row, rows_from_knn, rows_from_range
from screener.index.base import IdArray

BoolArray = npt.NDArray[np.bool_]


def serialize(index: Any, binary: bool) -> npt.NDArray[np.uint8]:
    out = faiss.serialize_index_binary(index) if binary else faiss.serialize_index(index)
    return np.asarray(out, dtype=np.uint8)


def deserialize(data: npt.NDArray[np.uint8], binary: bool) -> Any:
    buf = np.ascontiguousarray(data, dtype=np.uint8)
    return faiss.deserialize_index_binary(buf) if binary else faiss.deserialize_index(buf)


def _ivf_ids(ivf: Any) -> IdArray:
    """Every id stored in an IVF's inverted lists."""
    lists = ivf.invlists
    chunks = [np.empty(0, np.int64)]
    for list_no in range(ivf.nlist):
        size = lists.list_size(list_no)
        if size:
            ptr = lists.get_ids(list_no)
            chunks.append(faiss.rev_swig_ptr(ptr, size).astype(np.int64))
            lists.release_ids(list_no, ptr)
    return np.concatenate(chunks)


class IdStore:
    """A faiss index (an ``IndexIDMap2``, binary or dense, or an IVF) labelled by our ids."""

    def __init__(self, index: Any, binary: bool) -> None:
        self.index = index
        self.binary = binary

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def _unsorted_ids(self) -> IdArray:
        if hasattr(self.index, "id_map"):
            return np.asarray(faiss.vector_to_array(self.index.id_map), dtype=np.int64)
        return _ivf_ids(self.index)

    def ids(self) -> IdArray:
        return np.sort(self._unsorted_ids())

    def remove(self, ids: IdArray) -> int:
        if len(ids) == 0 or self.index.ntotal == 0:
            return 0
        return int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))

    def add(self, ids: IdArray, vectors: npt.NDArray[Any]) -> None:
        """Add, replacing ids already present (IDMap2 itself would keep both rows)."""
        if len(ids) == 0:
            return
        # IDMap2 rebuilds its whole reverse map on every remove_ids, even a no-op one, so
        # only call it when an id is really present (the id map is a cheap copy to check).
        if not hasattr(self.index, "id_map") or np.isin(self._unsorted_ids(), ids).any():
            self.remove(ids)
        self.index.add_with_ids(vectors, ids)

    def knn(self, queries: npt.NDArray[Any], k: int, params: Any = None) -> list[Row]:
        k = min(k, len(self))
        if k == 0:
            return [(np.empty(0, np.int64), np.empty(0, np.float32)) for _ in queries]
        distances, labels = self.index.search(queries, k, params=params)
        return rows_from_knn(distances, labels)

    def range(
        self, queries: npt.NDArray[Any], faiss_radius: float, params: Any = None
    ) -> list[Row]:
        lims, distances, labels = self.index.range_search(queries, faiss_radius, params=params)
        return rows_from_range(lims, distances, labels)

    def payload(self) -> dict[str, npt.NDArray[Any]]:
        return {"faiss": serialize(self.index, self.binary)}


class LabelMap:
    """Row position -> id, plus which rows are live; grows by doubling like a list."""

    def __init__(self, ids: IdArray | None = None, live: BoolArray | None = None) -> None:
        ids = np.empty(0, np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        live = np.ones(len(ids), dtype=bool) if live is None else np.asarray(live, dtype=bool)
        if live.shape != ids.shape:
            raise ValueError("label ids and live mask differ in length")
        self._ids = ids.copy()
        self._live = live.copy()
        self._n = len(ids)
        self._n_live = int(live.sum())
        self._selector: tuple[Any, npt.NDArray[np.uint8]] | None = None

    def __len__(self) -> int:
        return self._n_live

    @property
    def n_labels(self) -> int:
        return self._n

    @property
    def n_dead(self) -> int:
        return self._n - self._n_live

    def append(self, ids: IdArray) -> None:
        need = self._n + len(ids)
        if need > len(self._ids):
            cap = max(2 * len(self._ids), need, 16)
            self._ids = np.resize(self._ids, cap)
            self._live = np.resize(self._live, cap)
        self._ids[self._n : need] = ids
        self._live[self._n : need] = True
        self._n = need
        self._n_live += len(ids)
        self._selector = None

    def find(self, ids: IdArray) -> IdArray:
        """Live row positions holding any of ``ids``."""
        if len(ids) == 0 or self._n_live == 0:
            return np.empty(0, np.int64)
        hit = self._live[: self._n] & np.isin(self._ids[: self._n], ids)
        return np.flatnonzero(hit).astype(np.int64)

    def kill(self, labels: IdArray) -> None:
        if len(labels):
            self._live[labels] = False
            self._n_live = int(self._live[: self._n].sum())
            self._selector = None

    def live_labels(self) -> IdArray:
        return np.flatnonzero(self._live[: self._n]).astype(np.int64)

    def ids_of(self, labels: IdArray) -> IdArray:
        return self._ids[labels].copy()

    def live_ids(self) -> IdArray:
        return np.sort(self._ids[: self._n][self._live[: self._n]])

    def translate(self, rows: list[Row]) -> list[Row]:
        """Labels to ids, dropping dead rows (a second guard where faiss took no selector)."""
        out = []
        for labels, scores in rows:
            live = self._live[labels]
            out.append((self._ids[labels[live]], scores[live]))
        return out

    def selector(self) -> Any:
        """An ``IDSelectorBitmap`` of live rows, or None when nothing is dead.

        The bitmap array is cached beside the selector: faiss only holds a raw pointer.
        """
        if self.n_dead == 0:
            return None
        if self._selector is None:
            bitmap = np.packbits(self._live[: self._n], bitorder="little")
            sel = faiss.IDSelectorBitmap(self._n, faiss.swig_ptr(bitmap))
            self._selector = (sel, bitmap)
        return self._selector[0]

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {"label_ids": self._ids[: self._n].copy(), "live": self._live[: self._n].copy()}


class TombstoneStore:
    """A faiss structure without deletion, its ``LabelMap``, and the means to rebuild it."""

    def __init__(
        self,
        index: Any,
        labels: LabelMap,
        *,
        binary: bool,
        fresh: Callable[[], Any],
        rows_of: Callable[[Any, IdArray], npt.NDArray[Any]],
        compact_min: int,
    ) -> None:
        if labels.n_labels != index.ntotal:
            raise ValueError(f"{labels.n_labels} labels for {index.ntotal} rows")
        self.index = index
        self.labels = labels
        self.binary = binary
        self._fresh = fresh
        self._rows_of = rows_of
        self.compact_min = compact_min

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def tombstones(self) -> int:
        return self.labels.n_dead

    def ids(self) -> IdArray:
        return self.labels.live_ids()

    def add(self, ids: IdArray, vectors: npt.NDArray[Any]) -> None:
        if len(ids) == 0:
            return
        self.labels.kill(self.labels.find(ids))
        self.index.add(vectors)
        self.labels.append(ids)
        self._maybe_compact()

    def remove(self, ids: IdArray) -> int:
        found = self.labels.find(ids)
        self.labels.kill(found)
        self._maybe_compact()
        return len(found)

    def _maybe_compact(self) -> None:
        if self.labels.n_dead > max(len(self.labels), self.compact_min):
            self.compact()

    def compact(self) -> None:
        """Rebuild the structure from live rows only; ids and vectors are unchanged."""
        live = self.labels.live_labels()
        vectors = self._rows_of(self.index, live)
        index = self._fresh()
        if len(live):
            index.add(vectors)
        self.index = index
        self.labels = LabelMap(self.labels.ids_of(live))

    def payload(self) -> dict[str, npt.NDArray[Any]]:
        return {"faiss": serialize(self.index, self.binary), **self.labels.arrays()}
