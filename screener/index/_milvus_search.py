"""Search internals of ``MilvusIndex``: k-NN, radius and tie-resolving searches."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index._milvus_conn import _QUERY_BATCH, _TIE_SLACK, _VECTOR, MAX_TOPK, _call
from screener.index._results import Row, hamming_faiss_radius, ip_faiss_radius
from screener.index.base import IndexSpec

log = logging.getLogger("screener.index.milvus")


class _MilvusSearch:
    """Search internals over one collection; ``MilvusIndex`` supplies the attributes."""

    _spec: IndexSpec
    _structure: str
    _params: dict[str, int]
    _consistency: str
    _name: str
    _collection: Any

    @property
    def _metric_type(self) -> str:
        return "IP" if self._spec.metric == "ip" else "HAMMING"

    def _search_params(self, limit: int) -> dict[str, Any]:
        if self._structure == "HNSW":
            return {"ef": max(self._params["ef_search"], min(limit, MAX_TOPK))}
        if self._structure in ("IVF_FLAT", "BIN_IVF_FLAT"):
            return {"nprobe": min(self._params["nprobe"], self._params["nlist"])}
        return {}

    def _run(self, q: npt.NDArray[Any], limit: int, extra: dict[str, Any]) -> list[Row]:
        tuning = {**self._search_params(limit), **extra}
        params = {"metric_type": self._metric_type, "params": tuning}
        rows: list[Row] = []
        for start in range(0, len(q), _QUERY_BATCH):
            part = q[start : start + _QUERY_BATCH]
            data: Any = part if self._spec.metric == "ip" else [row.tobytes() for row in part]
            result = _call(
                "search",
                self._collection.search,
                data,
                _VECTOR,
                params,
                limit=limit,
                consistency_level=self._consistency,
            )
            for hits in result:
                rows.append(self._unique(hits.ids, hits.distances))
        return rows

    def _unique(self, ids: Any, distances: Any) -> Row:
        """Hits as arrays, best first, each id once (an upsert racing a search can briefly
        show an id in two segments)."""
        id_arr = np.asarray(list(ids), dtype=np.int64)
        scores = np.asarray(list(distances), dtype=np.float32)
        if len(np.unique(id_arr)) == len(id_arr):
            return id_arr, scores
        higher = self._spec.metric == "ip"
        order = np.lexsort((id_arr, -scores if higher else scores))
        id_arr, scores = id_arr[order], scores[order]
        _, first = np.unique(id_arr, return_index=True)
        keep = np.sort(first)
        return id_arr[keep], scores[keep]

    def _knn(self, q: npt.NDArray[Any], k: int) -> list[Row]:
        return self._run(q, min(k, MAX_TOPK), {})

    def _range(self, q: npt.NDArray[Any], radius: float) -> list[Row]:
        """Every hit within ``radius`` (inclusive), up to ``MAX_TOPK`` per query."""
        if self._spec.metric == "ip":
            bound: dict[str, Any] = {"radius": ip_faiss_radius(radius)}  # keeps scores > bound
        else:
            bound = {"radius": hamming_faiss_radius(radius)}  # keeps distances < bound
        rows = self._run(q, MAX_TOPK, bound)
        if any(len(ids) >= MAX_TOPK for ids, _ in rows):
            log.warning(
                "milvus collection %s: a radius search hit the %d-result cap; hits were cut",
                self._name,
                MAX_TOPK,
            )
        return rows

    def _tied(self, one: npt.NDArray[Any], score: float) -> list[Row]:
        if self._spec.metric == "ip":
            return self._range(one, score - _TIE_SLACK * max(1.0, abs(score)))
        return self._range(one, score)
