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
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from index._faiss import faiss
from index._persist import Arrays, write_index
from index._results import (
    Row,
    empty_row,
    ip_faiss_radius,
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
    positive_int,
)
from index.base import IdArray, IndexCorrupt, IndexSpec, Manifest, Neighbours

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


class FaissDenseIndex:
    """A faiss "Flat", "HNSW<M>" or "IVF<n>,..." index answering the ``VectorIndex`` protocol."""

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
        check_spec(spec)
        if spec.metric != "ip":
            raise ValueError(f"FaissDenseIndex serves metric 'ip', spec says {spec.metric!r}")
        self._spec = spec
        self._structure = structure
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
        self._store: IdStore | TombstoneStore
        if self._family == "hnsw":
            self._store = self._new_tombstone_store(self._new_hnsw(), LabelMap())
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

    def _new_hnsw(self) -> Any:
        index = faiss.index_factory(self._spec.dim, self._structure, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self._ef_construction
        return index

    def _new_tombstone_store(self, index: Any, labels: LabelMap) -> TombstoneStore:
        return TombstoneStore(
            index,
            labels,
            binary=False,
            fresh=self._new_hnsw,
            rows_of=lambda idx, rows: idx.reconstruct_batch(rows),
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
        if not self._trained and len(self._store) >= self._train_min:
            self._train()

    def remove(self, ids: IdArray) -> int:
        return self._store.remove(as_ids(ids))

    def search(
        self, queries: npt.NDArray[Any], k: int | None = None, radius: float | None = None
    ) -> Neighbours:
        k, radius = check_query(k, radius)
        q = as_vectors(queries, self._spec, "queries")
        if len(self) == 0 or len(q) == 0:
            return to_neighbours([empty_row() for _ in q])
        rows = self._within(q, radius) if k is None else self._knn(q, k)
        return to_neighbours(
            [select(i, s, k=k, radius=radius, higher_better=True) for i, s in rows]
        )

    def save(self, path: Path, high_water: int) -> Manifest:
        extra = {
            "structure": self._structure,
            "params": self.params,
            "trained": self._trained,
            "tombstones": self.tombstones,
        }
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
        if self._family != "hnsw":
            raise ValueError(f"ef_search applies to HNSW, not {self._structure!r}")
        self._ef_search = positive_int("ef_search", value)

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self._family != "ivf":
            raise ValueError(f"nprobe applies to IVF, not {self._structure!r}")
        self._nprobe = positive_int("nprobe", value)

    @property
    def is_trained(self) -> bool:
        """False while an IVF index still holds its vectors in the exact Flat buffer."""
        return self._trained

    @property
    def tombstones(self) -> int:
        """Removed rows still inside an HNSW graph (always 0 for Flat and IVF)."""
        return self._store.tombstones if isinstance(self._store, TombstoneStore) else 0

    def compact(self) -> None:
        """Rebuild an HNSW graph without its tombstones now (no-op for Flat and IVF)."""
        if isinstance(self._store, TombstoneStore):
            self._store.compact()

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

    @classmethod
    def from_arrays(
        cls, spec: IndexSpec, structure: str, params: dict[str, Any], arrays: Arrays
    ) -> FaissDenseIndex:
        """Rebuild from a saved payload; ``IndexCorrupt`` if it does not fit the structure."""
        index = cls(spec, structure, **params)
        try:
            raw = deserialize(arrays["faiss"], binary=False)
        except (KeyError, RuntimeError) as e:
            raise IndexCorrupt(f"cannot deserialise {structure!r} index: {e}") from e
        if raw.d != spec.dim or raw.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise IndexCorrupt(f"saved faiss index (d={raw.d}) does not fit {spec}")
        if index._family == "hnsw":
            if not isinstance(raw, faiss.IndexHNSW):
                raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not HNSW")
            try:
                labels = LabelMap(arrays["label_ids"], arrays["live"])
                index._store = index._new_tombstone_store(raw, labels)
            except (KeyError, ValueError) as e:
                raise IndexCorrupt(f"HNSW labels are missing or inconsistent: {e}") from e
            return index
        is_ivf = index._family == "ivf" and isinstance(raw, faiss.IndexIVF)
        flat = isinstance(raw, faiss.IndexIDMap2) and isinstance(
            faiss.downcast_index(raw.index), faiss.IndexFlat
        )
        if not (is_ivf or flat):
            raise IndexCorrupt(f"saved index is a {type(raw).__name__}, not {structure!r}")
        index._trained = index._family == "flat" or is_ivf
        index._store = IdStore(raw, binary=False)
        return index
