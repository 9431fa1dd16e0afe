"""Construction internals of ``MilvusIndex``: the structure to build, the collection's
schema and vector index, and the checks made when attaching to an existing collection."""

from __future__ import annotations

import json
from typing import Any

from screener.index._milvus_conn import (
    _DEFAULTS,
    _ID,
    _PARAMS,
    _VECTOR,
    BINARY_STRUCTURES,
    DENSE_STRUCTURES,
    _call,
    _pymilvus,
    choose_milvus_structure,
)
from screener.index._milvus_search import _MilvusSearch
from screener.index.base import IndexCorrupt, IndexSpec, IndexSpecMismatch


class _MilvusCollection(_MilvusSearch):
    """Making or adopting the collection; ``MilvusIndex`` supplies the attributes."""

    _alias: str

    def _resolve(self, structure: str, expected_size: int) -> str:
        if structure == "auto":
            return choose_milvus_structure(self._spec.metric, expected_size)
        allowed = DENSE_STRUCTURES if self._spec.metric == "ip" else BINARY_STRUCTURES
        if structure not in allowed:
            raise ValueError(
                f"unsupported milvus structure {structure!r} for metric "
                f"{self._spec.metric!r}: use 'auto' or one of {list(allowed)}"
            )
        return structure

    def _check_params(self, given: dict[str, int]) -> None:
        unknown = set(given) - _PARAMS[self._structure]
        if unknown:
            raise ValueError(f"parameters {sorted(unknown)} do not apply to {self._structure!r}")

    def _describe_spec(self) -> str:
        return json.dumps(
            {"spec_id": self._spec.spec_id, "dim": self._spec.dim, "metric": self._spec.metric}
        )

    def _create(self) -> Any:
        pm = _pymilvus()
        dtype = pm.DataType.FLOAT_VECTOR if self._spec.metric == "ip" else pm.DataType.BINARY_VECTOR
        schema = pm.CollectionSchema(
            [
                pm.FieldSchema(_ID, pm.DataType.INT64, is_primary=True, auto_id=False),
                pm.FieldSchema(_VECTOR, dtype, dim=self._spec.dim),
            ],
            description=self._describe_spec(),
        )
        collection = _call(
            "create_collection",
            pm.Collection,
            self._name,
            schema,
            using=self._alias,
            shards_num=1,
            consistency_level=self._consistency,
        )
        p = self._params
        build = {
            "HNSW": {"M": p.get("M"), "efConstruction": p.get("ef_construction")},
            "IVF_FLAT": {"nlist": p.get("nlist")},
            "BIN_IVF_FLAT": {"nlist": p.get("nlist")},
        }.get(self._structure, {})
        _call(
            "create_index",
            collection.create_index,
            _VECTOR,
            {"index_type": self._structure, "metric_type": self._metric_type, "params": build},
        )
        # The tuning parameters travel with the collection, so that another process that
        # attaches with "auto" searches the way its creator meant.
        _call(
            "set_properties",
            collection.set_properties,
            {"vector_index_params": json.dumps(self._params, sort_keys=True)},
        )
        return collection

    def _adopt(self, structure: str) -> tuple[str, dict[str, int]]:
        """Check an existing collection against the spec; its structure and saved params."""
        info = _call("describe_collection", self._collection.describe)
        try:
            doc = json.loads(info.get("description") or "{}")
            found = IndexSpec(doc["spec_id"], int(doc["dim"]), doc["metric"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupt(
                f"milvus collection {self._name!r} was not made by this package "
                f"(description {info.get('description')!r})"
            ) from exc
        if found != self._spec:
            raise IndexSpecMismatch(
                f"milvus collection {self._name!r} was built for {found}, but {self._spec} "
                "was asked for"
            )
        indexes = self._collection.indexes
        if not indexes:
            raise IndexCorrupt(f"milvus collection {self._name!r} has no vector index")
        existing = str(indexes[0].params.get("index_type"))
        if existing not in _PARAMS:
            raise IndexCorrupt(f"milvus collection {self._name!r} has index type {existing!r}")
        if structure not in ("auto", existing):
            raise IndexSpecMismatch(
                f"milvus collection {self._name!r} is indexed as {existing}, not {structure}"
            )
        props = dict(info.get("properties") or {})
        try:
            stored = json.loads(props.get("vector_index_params", "{}"))
            params = {key: int(stored[key]) for key in _PARAMS[existing] if key in stored}
        except (ValueError, TypeError) as exc:
            raise IndexCorrupt(f"milvus collection {self._name!r}: bad params {props}") from exc
        return existing, {key: params.get(key, _DEFAULTS[key]) for key in _PARAMS[existing]}
