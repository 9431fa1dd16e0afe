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
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from screener.index._common import FaissIndex
from screener.index._faiss import faiss
from screener.index._persist import Arrays
from screener.index._results import (
    Row,
    empty_row,
    hamming_faiss_radius,
    knn_resolving_ties,
    rows_from_knn,
    rows_from_range,
)
from screener.index._stores import IdStore, LabelMap, TombstoneStore
from screener.index._validate import non_negative_int
from screener.index.base import IdArray, IndexCorrupt, IndexSpec, Metric

_BMIH = re.compile(r"BMIH(\d+)")


def exact_flips(radius: float, nhash: int) -> int:
    """Flips per substring with which a multi-hash probe finds every code within ``radius``."""
    return math.floor(radius) // nhash


class FaissBinaryIndex(FaissIndex):
    """A faiss "BFlat" or "BMIH<nhash>" index answering the ``VectorIndex`` protocol."""

    _METRIC: ClassVar[Metric] = "hamming"

    def __init__(
        self,
        spec: IndexSpec,
        structure: str = "BFlat",
        *,
        max_flips: int | None = None,
        k_flips: int | None = None,
        compact_min: int | None = None,
    ) -> None:
        super().__init__(spec, structure)
        self._lock = threading.Lock()
        self._max_flips = non_negative_int("max_flips", 2 if max_flips is None else max_flips)
        self._k_flips = non_negative_int("k_flips", 1 if k_flips is None else k_flips)
        self._compact_min = non_negative_int(
            "compact_min", 1024 if compact_min is None else compact_min
        )
        self._nhash = 0
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
            self._store = self._new_tombstone_store(self._fresh(), LabelMap())
        else:
            raise ValueError(
                f"unsupported binary structure {structure!r}: use 'BFlat' or 'BMIH<nhash>'"
            )

    # -- construction -------------------------------------------------------------------

    def _fresh(self) -> Any:
        return faiss.IndexBinaryMultiHash(
            self._spec.dim, self._nhash, self._spec.dim // self._nhash
        )

    @staticmethod
    def _rows_of(index: Any, rows: IdArray) -> npt.NDArray[np.uint8]:
        codes = faiss.vector_to_array(index.storage.xb).reshape(index.ntotal, index.code_size)
        return np.ascontiguousarray(codes[rows])

    # -- search -------------------------------------------------------------------------

    def _candidates(self, q: npt.NDArray[Any], k: int | None, radius: float | None) -> list[Row]:
        if radius is not None and radius < 0:
            return [empty_row() for _ in q]  # no distance is negative
        store = self._store
        if isinstance(store, TombstoneStore):
            return self._mih_search(store, q, k, radius)
        if k is None:
            assert radius is not None
            return store.range(q, hamming_faiss_radius(radius))
        return knn_resolving_ties(
            store.knn,
            lambda one, s: store.range(one, hamming_faiss_radius(s)),
            q,
            k,
            higher_better=False,
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

    # -- restore ------------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls, spec: IndexSpec, structure: str, params: dict[str, Any], arrays: Arrays
    ) -> FaissBinaryIndex:
        """Rebuild from a saved payload; ``IndexCorrupt`` if it does not fit the structure."""
        return cls._from_arrays(spec, structure, params, arrays)

    def _restore(self, raw: Any, arrays: Arrays) -> None:
        if self._nhash == 0:
            if not isinstance(raw, faiss.IndexBinaryIDMap2):
                raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not IndexBinaryIDMap2")
            self._store = IdStore(raw, binary=True)
            return
        if not isinstance(raw, faiss.IndexBinaryMultiHash) or raw.nhash != self._nhash:
            raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not {self._structure!r}")
        self._restore_tombstones(raw, arrays, "multi-hash")
