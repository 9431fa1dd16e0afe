"""``FaissDenseIndex``: faiss structures over float32 vectors scored by inner product.

Structures are faiss index-factory strings, always built with ``METRIC_INNER_PRODUCT``:

``"Flat"``
    Exact brute force inside an ``IndexIDMap2``; ``remove`` deletes rows natively. Ties at
    the k-th score are resolved towards smaller ids, so it answers exactly like
    ``NumpyIndex``.
``"HNSW<M>"`` (or ``"HNSW<M>,Flat"``)
    Approximate graph search. HNSW cannot delete, so removed rows become tombstones: they
    are excluded at search by an ``IDSelectorBitmap`` in ``SearchParametersHNSW`` and the
    graph is rebuilt from the live vectors once dead rows outnumber live ones (and exceed
    ``compact_min``). ``ef_search`` (default 64) can be changed at any time;
    ``ef_construction`` (default 80) applies to rows added afterwards.
``"IVF<n>,<codec>"`` (e.g. ``"IVF16,Flat"``, ``"IVF64,PQ8"``)
    Approximate inverted lists that hold our ids themselves; ``remove`` is native and
    ``nprobe`` (default 16) can be changed at any time. IVF must be trained, and k-means on
    a handful of vectors gives useless lists, so the index starts as an exact Flat
    *buffer*. The add that brings it to ``train_min`` vectors trains the IVF on everything
    buffered and moves those vectors in (so a first batch that is large enough is trained
    on at once). ``train_min`` defaults to 39 vectors per list, the point below which faiss
    itself warns, and to at least 39 * 256 when the codec is a PQ. The IVF is never
    retrained; a registry that grows far past its training set should be rebuilt.

None of these is safe to mutate from several threads at once.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from screener.index._common import FaissIndex
from screener.index._faiss import faiss
from screener.index._persist import Arrays
from screener.index._results import (
    Row,
    ip_faiss_radius,
    knn_resolving_ties,
    rows_from_knn,
    rows_from_range,
)
from screener.index._stores import IdStore, LabelMap, TombstoneStore
from screener.index._validate import non_negative_int, positive_int
from screener.index.base import IdArray, IndexCorrupt, IndexSpec, Metric

_HNSW = re.compile(r"HNSW(\d+)(,Flat)?")
_IVF = re.compile(r"IVF\d+.*")

#: Relative slack when re-running a tied k-NN query as a range search: faiss's range and
#: k-NN code paths may round the same inner product differently in the last bits.
_TIE_SLACK = 1e-5

_PARAMS = {
    "flat": frozenset(),
    "hnsw": frozenset({"ef_search", "ef_construction", "compact_min"}),
    "ivf": frozenset({"nprobe", "train_min"}),
}


def dense_family(structure: str) -> str:
    """``"flat"``, ``"hnsw"`` or ``"ivf"``; ``ValueError`` for anything else."""
    if structure == "Flat":
        return "flat"
    if _HNSW.fullmatch(structure):
        return "hnsw"
    if _IVF.fullmatch(structure):
        return "ivf"
    raise ValueError(
        f"unsupported dense structure {structure!r}: use 'Flat', 'HNSW<M>' or 'IVF<n>,<codec>'"
    )


class FaissDenseIndex(FaissIndex):
    """A faiss "Flat", "HNSW<M>" or "IVF<n>,..." index answering the ``VectorIndex`` protocol."""

    _METRIC: ClassVar[Metric] = "ip"

    def __init__(
        self,
        spec: IndexSpec,
        structure: str = "Flat",
        *,
        ef_search: int | None = None,
        ef_construction: int | None = None,
        compact_min: int | None = None,
        nprobe: int | None = None,
        train_min: int | None = None,
    ) -> None:
        super().__init__(spec, structure)
        self._family = dense_family(structure)
        given = {
            name
            for name, value in (
                ("ef_search", ef_search),
                ("ef_construction", ef_construction),
                ("compact_min", compact_min),
                ("nprobe", nprobe),
                ("train_min", train_min),
            )
            if value is not None
        }
        if given - _PARAMS[self._family]:
            raise ValueError(
                f"parameters {sorted(given - _PARAMS[self._family])} do not apply to {structure!r}"
            )
        self._ef_search = positive_int("ef_search", 64 if ef_search is None else ef_search)
        self._ef_construction = positive_int(
            "ef_construction", 80 if ef_construction is None else ef_construction
        )
        self._compact_min = non_negative_int(
            "compact_min", 1024 if compact_min is None else compact_min
        )
        # 16: the cheapest setting with recall@1 1.0 on near-duplicates at 1M (lookup bench).
        self._nprobe = positive_int("nprobe", 16 if nprobe is None else nprobe)
        self._trained = self._family != "ivf"
        self._train_min = 0
        if self._family == "hnsw":
            self._store = self._new_tombstone_store(self._fresh(), LabelMap())
        else:
            self._store = IdStore(faiss.IndexIDMap2(faiss.IndexFlatIP(spec.dim)), binary=False)
        if self._family == "ivf":
            self._train_min = self._check_ivf(train_min)

    # -- construction -------------------------------------------------------------------

    def _new_ivf(self) -> Any:
        try:
            return faiss.index_factory(self._spec.dim, self._structure, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as e:
            raise ValueError(f"faiss cannot build {self._structure!r}: {e}") from e

    def _check_ivf(self, train_min: int | None) -> int:
        """Validate the factory string and work out how many vectors training needs."""
        owner = self._new_ivf()  # must outlive ``ivf``, which points into it
        try:
            ivf = faiss.extract_index_ivf(owner)
        except RuntimeError as e:
            raise ValueError(f"{self._structure!r} is not an IVF structure") from e
        needed = int(ivf.nlist)
        pq = getattr(faiss.downcast_index(ivf), "pq", None)
        if pq is not None:
            needed = max(needed, int(pq.ksub))
        if train_min is None:
            return 39 * needed
        value = positive_int("train_min", train_min)
        if value < needed:
            raise ValueError(f"train_min must be >= {needed} for {self._structure!r}, got {value}")
        return value

    def _fresh(self) -> Any:
        index = faiss.index_factory(self._spec.dim, self._structure, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self._ef_construction
        return index

    @staticmethod
    def _rows_of(index: Any, rows: IdArray) -> npt.NDArray[Any]:
        return np.asarray(index.reconstruct_batch(rows))

    # -- protocol -----------------------------------------------------------------------

    def add(self, ids: IdArray, vectors: npt.NDArray[Any]) -> None:
        super().add(ids, vectors)
        if not self._trained and len(self._store) >= self._train_min:
            self._train()

    def _candidates(self, q: npt.NDArray[Any], k: int | None, radius: float | None) -> list[Row]:
        return self._within(q, radius) if k is None else self._knn(q, k)

    def _saved_state(self) -> dict[str, Any]:
        return {"trained": self._trained}

    # -- tuning and state ---------------------------------------------------------------

    @property
    def params(self) -> dict[str, int]:
        """The tuning parameters in force, as saved in the manifest."""
        every = {
            "ef_search": self._ef_search,
            "ef_construction": self._ef_construction,
            "compact_min": self._compact_min,
            "nprobe": self._nprobe,
            "train_min": self._train_min,
        }
        return {name: every[name] for name in sorted(_PARAMS[self._family])}

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._ef_search = self._retuned("ef_search", "hnsw", value)

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = self._retuned("nprobe", "ivf", value)

    def _retuned(self, name: str, family: str, value: int) -> int:
        """``value`` checked for the parameter ``name``, which only ``family`` structures take."""
        if self._family != family:
            raise ValueError(f"{name} applies to {family.upper()}, not {self._structure!r}")
        return positive_int(name, value)

    @property
    def is_trained(self) -> bool:
        """False while an IVF index still holds its vectors in the exact Flat buffer."""
        return self._trained

    # -- internals ----------------------------------------------------------------------

    def _train(self) -> None:
        """Train the IVF on every buffered vector and move them all into it."""
        buffer = self._store
        assert isinstance(buffer, IdStore)
        ids = faiss.vector_to_array(buffer.index.id_map).astype(np.int64)
        vectors = buffer.index.index.reconstruct_n(0, len(buffer))
        ivf = self._new_ivf()
        ivf.train(vectors)
        ivf.add_with_ids(vectors, ids)
        self._store = IdStore(ivf, binary=False)
        self._trained = True

    def _search_params(self) -> Any:
        if isinstance(self._store, TombstoneStore):
            sel = self._store.labels.selector()
            if sel is None:
                return faiss.SearchParametersHNSW(efSearch=self._ef_search)
            return faiss.SearchParametersHNSW(sel=sel, efSearch=self._ef_search)
        if self._family == "ivf" and self._trained:
            return faiss.SearchParametersIVF(nprobe=self._nprobe)
        return None

    def _knn(self, q: npt.NDArray[Any], k: int) -> list[Row]:
        store = self._store
        if isinstance(store, TombstoneStore):
            k = min(k, store.labels.n_labels)
            distances, labels = store.index.search(q, k, params=self._search_params())
            return store.labels.translate(rows_from_knn(distances, labels))
        if self._trained and self._family == "ivf":
            return store.knn(q, k, self._search_params())
        # Flat, or IVF still in its exact buffer: exact, so make ties deterministic too.
        return knn_resolving_ties(
            store.knn,
            lambda one, s: store.range(one, ip_faiss_radius(s - _TIE_SLACK * max(1.0, abs(s)))),
            q,
            k,
            higher_better=True,
        )

    def _within(self, q: npt.NDArray[Any], radius: float | None) -> list[Row]:
        assert radius is not None
        r = ip_faiss_radius(radius)
        store = self._store
        params = self._search_params()
        if isinstance(store, TombstoneStore):
            lims, distances, labels = store.index.range_search(q, r, params=params)
            return store.labels.translate(rows_from_range(lims, distances, labels))
        return store.range(q, r, params)

    # -- restore ------------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls, spec: IndexSpec, structure: str, params: dict[str, Any], arrays: Arrays
    ) -> FaissDenseIndex:
        """Rebuild from a saved payload; ``IndexCorrupt`` if it does not fit the structure."""
        return cls._from_arrays(spec, structure, params, arrays)

    def _fits(self, raw: Any) -> bool:
        return super()._fits(raw) and bool(raw.metric_type == faiss.METRIC_INNER_PRODUCT)

    def _restore(self, raw: Any, arrays: Arrays) -> None:
        if self._family == "hnsw":
            if not isinstance(raw, faiss.IndexHNSW):
                raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not HNSW")
            self._restore_tombstones(raw, arrays, "HNSW")
            return
        is_ivf = self._family == "ivf" and isinstance(raw, faiss.IndexIVF)
        flat = isinstance(raw, faiss.IndexIDMap2) and isinstance(
            faiss.downcast_index(raw.index), faiss.IndexFlat
        )
        if not (is_ivf or flat):
            raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not {self._structure!r}")
        self._trained = self._family == "flat" or is_ivf
        self._store = IdStore(raw, binary=False)
