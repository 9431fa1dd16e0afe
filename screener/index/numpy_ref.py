"""``NumpyIndex``: brute force over a numpy matrix.

It is the ground truth of the contract tests, so it is written to be obviously right
rather than fast: every query scores every row and :func:`screener.index._results.select` does the
rest. It is also a fine index for registries of a few thousand rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index._persist import Arrays, save_index
from screener.index._results import Row, empty_row, select, to_neighbours
from screener.index._validate import (
    as_ids,
    as_vectors,
    check_add,
    check_query,
    check_spec,
    row_width,
)
from screener.index.base import IdArray, IndexCorrupt, IndexSpec, Manifest, Neighbours

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)


class NumpyIndex:
    """Exact index for both metrics: rows and ids in two aligned arrays."""

    def __init__(self, spec: IndexSpec) -> None:
        check_spec(spec)
        self._spec = spec
        self._ids: IdArray = np.empty(0, dtype=np.int64)
        dtype = np.float32 if spec.metric == "ip" else np.uint8
        self._vectors: npt.NDArray[Any] = np.empty((0, row_width(spec)), dtype=dtype)

    @property
    def spec(self) -> IndexSpec:
        return self._spec

    @property
    def kind(self) -> str:
        return "numpy"

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> IdArray:
        return np.sort(self._ids)

    def add(self, ids: IdArray, vectors: npt.NDArray[Any]) -> None:
        id_arr, vec = check_add(ids, vectors, self._spec)
        keep = ~np.isin(self._ids, id_arr)
        self._ids = np.concatenate([self._ids[keep], id_arr])
        self._vectors = np.concatenate([self._vectors[keep], vec])

    def remove(self, ids: IdArray) -> int:
        hit = np.isin(self._ids, as_ids(ids))
        self._ids, self._vectors = self._ids[~hit], self._vectors[~hit]
        return int(hit.sum())

    def search(
        self, queries: npt.NDArray[Any], k: int | None = None, radius: float | None = None
    ) -> Neighbours:
        k, radius = check_query(k, radius)
        q = as_vectors(queries, self._spec, "queries")
        rows: list[Row] = []
        for query in q:
            if len(self._ids) == 0:
                rows.append(empty_row())
                continue
            if self._spec.metric == "ip":
                scores = (self._vectors @ query).astype(np.float32)
            else:
                scores = _POPCOUNT[np.bitwise_xor(self._vectors, query)].sum(axis=1)
            rows.append(
                select(
                    self._ids, scores, k=k, radius=radius, higher_better=self._spec.metric == "ip"
                )
            )
        return to_neighbours(rows)

    def save(self, path: Path, high_water: int) -> Manifest:
        arrays: Arrays = {"ids": self._ids, "vectors": self._vectors}
        return save_index(self, path, high_water, arrays=arrays, extra={})

    @classmethod
    def from_arrays(cls, spec: IndexSpec, arrays: Arrays) -> NumpyIndex:
        """Rebuild from a saved payload; ``IndexCorrupt`` if the arrays do not fit ``spec``."""
        index = cls(spec)
        try:
            ids, vectors = arrays["ids"], arrays["vectors"]
            index.add(ids, vectors)
        except (KeyError, ValueError) as e:
            raise IndexCorrupt(f"numpy index payload does not fit {spec}: {e}") from e
        return index
