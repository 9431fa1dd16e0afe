"""``FaissBinaryIndex``: faiss structures over packed bit vectors scored by Hamming distance.

``"BFlat"``
    Exact brute force (``IndexBinaryFlat`` inside ``IndexBinaryIDMap2``); ``remove`` is
    native; ties at the k-th distance go to smaller ids, as in ``NumpyIndex``.
``"BMIH<nhash>"``
    Multi-index hashing (``IndexBinaryMultiHash``): each code is cut into ``nhash``
    substrings of ``b = dim // nhash`` bits, each the key of a hash table, and a probe that
    flips up to ``nflip`` bits per substring finds every stored code agreeing with the query
    to within ``nflip`` bits on at least one substring. By pigeonhole, if every substring
    differed in more than ``nflip`` bits the distance would be at least
    ``nhash * (nflip + 1)``; so a probe with ``nflip`` finds *every* code within radius
    ``r`` exactly when ``r < nhash * (nflip + 1)``, i.e. ``nflip = floor(r / nhash)``
    (:func:`exact_flips`). For 256-bit PDQ at radius 31, ``BMIH16`` probes with one flip:
    16 * 17 = 272 bucket look-ups per query instead of a full scan.

    Results are always exact. A radius search probes with ``exact_flips(radius)``, or scans
    the flat storage when that exceeds ``max_flips`` (default 2; the probe count grows as
    ``b`` choose ``nflip``). A k-only search probes with ``k_flips`` (default 1), which finds
    every code within ``nhash * (k_flips + 1) - 1``; if at least k live codes lie there they
    are the k best, else that query falls back to the scan.

    ``IndexBinaryMultiHash`` cannot delete, nor can an ID map around it, so removed rows are
    tombstones: filtered out of probe results, excluded by an ``IDSelectorBitmap`` in scans,
    and dropped by a rebuild once they outnumber live rows (and exceed ``compact_min``).
    Searches set the probe's ``nflip`` under a lock, so concurrent searches are safe;
    concurrent mutation is not.
"""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index._faiss import faiss
from index._persist import Arrays, write_index
from index._results import (
    Row,
    empty_row,
    hamming_faiss_radius,
    knn_resolving_ties,
    rows_from_knn,
    rows_from_range,
    select,
    to_neighbours,
)
from index._stores import IdStore, LabelMap, TombstoneStore, deserialize
from index._validate import (
    as_ids,
    as_vectors,
    check_add,
    check_query,
    check_spec,
    non_negative_int,
)
from index.base import IdArray, IndexCorrupt, IndexSpec, Manifest, Neighbours

_BMIH = re.compile(r"BMIH(\d+)")


def exact_flips(radius: float, nhash: int) -> int:
    """Flips per substring with which a multi-hash probe finds every code within ``radius``."""
    return math.floor(radius) // nhash


def _stored_codes(index: Any, rows: IdArray) -> npt.NDArray[np.uint8]:
    codes = faiss.vector_to_array(index.storage.xb).reshape(index.ntotal, index.code_size)
    return np.ascontiguousarray(codes[rows])


class FaissBinaryIndex:
    """A faiss "BFlat" or "BMIH<nhash>" index answering the ``VectorIndex`` protocol."""

    def __init__(
        self,
        spec: IndexSpec,
        structure: str = "BFlat",
        *,
        max_flips: int | None = None,
        k_flips: int | None = None,
        compact_min: int | None = None,
    ) -> None:
        check_spec(spec)
        if spec.metric != "hamming":
            raise ValueError(f"FaissBinaryIndex serves metric 'hamming', spec says {spec.metric!r}")
        self._spec = spec
        self._structure = structure
        self._lock = threading.Lock()
        self._max_flips = non_negative_int("max_flips", 2 if max_flips is None else max_flips)
        self._k_flips = non_negative_int("k_flips", 1 if k_flips is None else k_flips)
        self._compact_min = non_negative_int(
            "compact_min", 1024 if compact_min is None else compact_min
        )
        self._nhash = 0
        self._store: IdStore | TombstoneStore
        match = _BMIH.fullmatch(structure)
        if structure == "BFlat":
            given = [
                name
                for name, value in (
                    ("max_flips", max_flips),
                    ("k_flips", k_flips),
                    ("compact_min", compact_min),
                )
                if value is not None
            ]
            if given:
                raise ValueError(f"parameters {given} do not apply to 'BFlat'")
            flat = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(spec.dim))
            self._store = IdStore(flat, binary=True)
        elif match:
            self._nhash = int(match.group(1))
            bits = spec.dim // self._nhash if self._nhash else 0
            if not 1 <= bits <= 64:
                raise ValueError(
                    f"{structure!r} on {spec.dim} bits gives {bits}-bit substrings; "
                    "choose nhash so that dim // nhash is between 1 and 64"
                )
            self._store = self._new_tombstone_store(self._new_mih(), LabelMap())
        else:
            raise ValueError(
                f"unsupported binary structure {structure!r}: use 'BFlat' or 'BMIH<nhash>'"
            )

    def _new_mih(self) -> Any:
        return faiss.IndexBinaryMultiHash(
            self._spec.dim, self._nhash, self._spec.dim // self._nhash
        )

    def _new_tombstone_store(self, index: Any, labels: LabelMap) -> TombstoneStore:
        return TombstoneStore(
            index,
            labels,
            binary=True,
            fresh=self._new_mih,
            rows_of=_stored_codes,
            compact_min=self._compact_min,
        )

    # -- protocol -----------------------------------------------------------------------

    @property
    def spec(self) -> IndexSpec:
        return self._spec

    @property
    def kind(self) -> str:
        return f"faiss:{self._structure}"

    def __len__(self) -> int:
        return len(self._store)

    def ids(self) -> IdArray:
        return self._store.ids()

    def add(self, ids: IdArray, vectors: npt.NDArray[Any]) -> None:
        id_arr, vec = check_add(ids, vectors, self._spec)
        self._store.add(id_arr, vec)

    def remove(self, ids: IdArray) -> int:
        return self._store.remove(as_ids(ids))

    def search(
        self, queries: npt.NDArray[Any], k: int | None = None, radius: float | None = None
    ) -> Neighbours:
        k, radius = check_query(k, radius)
        q = as_vectors(queries, self._spec, "queries")
        if len(self) == 0 or len(q) == 0 or (radius is not None and radius < 0):
            return to_neighbours([empty_row() for _ in q])
        store = self._store
        if isinstance(store, TombstoneStore):
            rows = self._mih_search(store, q, k, radius)
        elif k is None:
            assert radius is not None
            rows = store.range(q, hamming_faiss_radius(radius))
        else:
            rows = knn_resolving_ties(
                store.knn,
                lambda one, s: store.range(one, hamming_faiss_radius(s)),
                q,
                k,
                higher_better=False,
            )
        return to_neighbours(
            [select(i, s, k=k, radius=radius, higher_better=False) for i, s in rows]
        )

    def save(self, path: Path, high_water: int) -> Manifest:
        extra = {"structure": self._structure, "params": self.params, "tombstones": self.tombstones}
        return write_index(
            path,
            spec=self._spec,
            kind=self.kind,
            count=len(self),
            high_water=high_water,
            arrays=self._store.payload(),
            extra=extra,
        )

    # -- tuning and state ---------------------------------------------------------------

    @property
    def params(self) -> dict[str, int]:
        """The tuning parameters in force, as saved in the manifest."""
        if self._nhash == 0:
            return {}
        return {
            "compact_min": self._compact_min,
            "k_flips": self._k_flips,
            "max_flips": self._max_flips,
        }

    @property
    def tombstones(self) -> int:
        """Removed rows still inside a multi-hash (always 0 for BFlat)."""
        return self._store.tombstones if isinstance(self._store, TombstoneStore) else 0

    def compact(self) -> None:
        """Rebuild a multi-hash without its tombstones now (no-op for BFlat)."""
        if isinstance(self._store, TombstoneStore):
            self._store.compact()

    # -- multi-index hashing ------------------------------------------------------------

    def _mih_search(
        self, store: TombstoneStore, q: npt.NDArray[Any], k: int | None, radius: float | None
    ) -> list[Row]:
        if radius is not None:
            flips = exact_flips(radius, self._nhash)
            if flips > self._max_flips:
                return self._scan(store, q, k, radius)
            return self._probe(store, q, flips, hamming_faiss_radius(radius))
        assert k is not None
        reach = self._nhash * (self._k_flips + 1) - 1
        rows = self._probe(store, q, self._k_flips, hamming_faiss_radius(reach))
        short = [i for i, (ids, _) in enumerate(rows) if len(ids) < k]
        if short:
            for i, row in zip(short, self._scan(store, q[short], k, None), strict=True):
                rows[i] = row
        return rows

    def _probe(
        self, store: TombstoneStore, q: npt.NDArray[Any], flips: int, faiss_radius: int
    ) -> list[Row]:
        """Every live code within ``faiss_radius - 1`` that the hash tables reach."""
        with self._lock:
            store.index.nflip = flips
            lims, distances, labels = store.index.range_search(q, faiss_radius)
        return store.labels.translate(rows_from_range(lims, distances, labels))

    def _scan(
        self, store: TombstoneStore, q: npt.NDArray[Any], k: int | None, radius: float | None
    ) -> list[Row]:
        """Exhaustive search of the multi-hash's flat storage, tombstones masked out."""
        flat = store.index.storage
        sel = store.labels.selector()
        params = None if sel is None else faiss.SearchParameters(sel=sel)

        def within(qq: npt.NDArray[Any], r: float) -> list[Row]:
            lims, distances, labels = flat.range_search(qq, hamming_faiss_radius(r), params=params)
            return store.labels.translate(rows_from_range(lims, distances, labels))

        def knn(qq: npt.NDArray[Any], kk: int) -> list[Row]:
            distances, labels = flat.search(qq, min(kk, flat.ntotal), params=params)
            return store.labels.translate(rows_from_knn(distances, labels))

        if k is None:
            assert radius is not None
            return within(q, radius)
        return knn_resolving_ties(knn, within, q, k, higher_better=False)

    @classmethod
    def from_arrays(
        cls, spec: IndexSpec, structure: str, params: dict[str, Any], arrays: Arrays
    ) -> FaissBinaryIndex:
        """Rebuild from a saved payload; ``IndexCorrupt`` if it does not fit the structure."""
        index = cls(spec, structure, **params)
        try:
            raw = deserialize(arrays["faiss"], binary=True)
        except (KeyError, RuntimeError) as e:
            raise IndexCorrupt(f"cannot deserialise {structure!r} index: {e}") from e
        if raw.d != spec.dim:
            raise IndexCorrupt(f"saved faiss index (d={raw.d}) does not fit {spec}")
        if index._nhash == 0:
            if not isinstance(raw, faiss.IndexBinaryIDMap2):
                raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not IndexBinaryIDMap2")
            index._store = IdStore(raw, binary=True)
            return index
        if not isinstance(raw, faiss.IndexBinaryMultiHash) or raw.nhash != index._nhash:
            raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not {structure!r}")
        try:
            index._store = index._new_tombstone_store(
                raw, LabelMap(arrays["label_ids"], arrays["live"])
            )
        except (KeyError, ValueError) as e:
            raise IndexCorrupt(f"multi-hash labels are missing or inconsistent: {e}") from e
        return index
