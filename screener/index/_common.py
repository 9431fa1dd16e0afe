"""What ``FaissDenseIndex`` and ``FaissBinaryIndex`` share.

Both keep their spec, their faiss structure string and a store (an ``IdStore`` or, for a
structure that cannot delete, a ``TombstoneStore``), and the protocol methods that only
forward to the store are the same for both. So are the outline of a search (validate, run
the structure's own candidate search, shape the rows with :func:`screener.index._results.select`),
of a save (the payload and a manifest ``extra`` naming the structure, its parameters and
its tombstones) and of a restore from a saved payload. :class:`FaissIndex` holds all of
that; each subclass supplies its structures, its parameters and its candidate search.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy.typing as npt

from screener.index._persist import Arrays, save_index
from screener.index._results import Row, empty_row, select, to_neighbours
from screener.index._stores import IdStore, LabelMap, TombstoneStore, deserialize
from screener.index._validate import as_ids, as_vectors, check_add, check_query, check_spec
from screener.index.base import IdArray, IndexCorrupt, IndexSpec, Manifest, Metric, Neighbours


class FaissIndex(ABC):
    """A faiss structure, held in a store, answering the ``VectorIndex`` protocol."""

    #: The one metric the subclass serves.
    _METRIC: ClassVar[Metric]

    _store: IdStore | TombstoneStore
    _compact_min: int

    def __init__(self, spec: IndexSpec, structure: str) -> None:
        check_spec(spec)
        if spec.metric != self._METRIC:
            raise ValueError(
                f"{type(self).__name__} serves metric {self._METRIC!r}, spec says {spec.metric!r}"
            )
        self._spec = spec
        self._structure = structure

    @property
    def _binary(self) -> bool:
        return self._spec.metric == "hamming"

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
        if len(self) == 0 or len(q) == 0:
            return to_neighbours([empty_row() for _ in q])
        higher_better = self._spec.metric == "ip"
        return to_neighbours(
            [
                select(i, s, k=k, radius=radius, higher_better=higher_better)
                for i, s in self._candidates(q, k, radius)
            ]
        )

    def save(self, path: Path, high_water: int) -> Manifest:
        extra = {
            "structure": self._structure,
            "params": self.params,
            **self._saved_state(),
            "tombstones": self.tombstones,
        }
        return save_index(self, path, high_water, arrays=self._store.payload(), extra=extra)

    # -- tuning and state ---------------------------------------------------------------

    @property
    @abstractmethod
    def params(self) -> dict[str, int]:
        """The tuning parameters in force, as saved in the manifest."""

    @property
    def tombstones(self) -> int:
        """Removed rows still inside an HNSW graph or a multi-hash (always 0 for the others).

        Flat, IVF and BFlat delete natively and never hold any.
        """
        return self._store.tombstones if isinstance(self._store, TombstoneStore) else 0

    def compact(self) -> None:
        """Rebuild an HNSW graph or a multi-hash without its tombstones now.

        A no-op for Flat, IVF and BFlat, which hold none.
        """
        if isinstance(self._store, TombstoneStore):
            self._store.compact()

    # -- what a subclass supplies -------------------------------------------------------

    @abstractmethod
    def _candidates(self, q: npt.NDArray[Any], k: int | None, radius: float | None) -> list[Row]:
        """Per query, candidate (id, score) rows that ``select`` cuts to the answer.

        Only called with at least one query and one stored vector.
        """

    def _saved_state(self) -> dict[str, Any]:
        """Manifest ``extra`` entries beyond structure, params and tombstones."""
        return {}

    @abstractmethod
    def _fresh(self) -> Any:
        """An empty instance of the structure that keeps tombstones."""

    @staticmethod
    @abstractmethod
    def _rows_of(index: Any, rows: IdArray) -> npt.NDArray[Any]:
        """The vectors stored at row positions ``rows`` of a tombstone structure."""

    @abstractmethod
    def _restore(self, raw: Any, arrays: Arrays) -> None:
        """Take over ``raw``, read from a saved payload; ``IndexCorrupt`` if it does not fit."""

    def _fits(self, raw: Any) -> bool:
        """Whether a deserialised faiss index fits the spec."""
        return bool(raw.d == self._spec.dim)

    # -- shared internals ---------------------------------------------------------------

    def _new_tombstone_store(self, index: Any, labels: LabelMap) -> TombstoneStore:
        return TombstoneStore(
            index,
            labels,
            binary=self._binary,
            fresh=self._fresh,
            rows_of=self._rows_of,
            compact_min=self._compact_min,
        )

    def _restore_tombstones(self, raw: Any, arrays: Arrays, what: str) -> None:
        """Adopt ``raw`` with the saved labels, as a ``TombstoneStore``."""
        try:
            labels = LabelMap(arrays["label_ids"], arrays["live"])
            self._store = self._new_tombstone_store(raw, labels)
        except (KeyError, ValueError) as e:
            raise IndexCorrupt(f"{what} labels are missing or inconsistent: {e}") from e

    @classmethod
    def _from_arrays(
        cls, spec: IndexSpec, structure: str, params: dict[str, Any], arrays: Arrays
    ) -> Self:
        """What each subclass's ``from_arrays`` does: rebuild from a saved payload.

        ``IndexCorrupt`` if the payload does not fit the structure.
        """
        index = cls(spec, structure, **params)
        try:
            raw = deserialize(arrays["faiss"], binary=index._binary)
        except (KeyError, RuntimeError) as e:
            raise IndexCorrupt(f"cannot deserialise {structure!r} index: {e}") from e
        if not index._fits(raw):
            raise IndexCorrupt(f"saved faiss index (d={raw.d}) does not fit {spec}")
        index._restore(raw, arrays)
        return index
