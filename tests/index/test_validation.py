"""Bad input gets one clear ``ValueError`` from every implementation, never a faiss crash."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from screener.index import IndexSpec, VectorIndex, create

DENSE = IndexSpec("sscd", 8, "ip")
BINARY = IndexSpec("pdq", 64, "hamming")
STRUCTURES = [
    (DENSE, "numpy"),
    (DENSE, "Flat"),
    (DENSE, "HNSW16"),
    (DENSE, "IVF4,Flat"),
    (BINARY, "numpy"),
    (BINARY, "BFlat"),
    (BINARY, "BMIH4"),
]


@pytest.fixture(params=STRUCTURES, ids=lambda p: f"{p[0].metric}-{p[1]}", name="index")
def _index(request: pytest.FixtureRequest) -> VectorIndex:
    spec, structure = request.param
    idx = create(spec, structure)
    idx.add(np.array([1, 2]), good_rows(spec, 2))
    return idx


def good_rows(spec: IndexSpec, n: int) -> np.ndarray[Any, Any]:
    if spec.metric == "ip":
        return np.ones((n, spec.dim), dtype=np.float32)
    return np.zeros((n, spec.dim // 8), dtype=np.uint8)


def bad_vectors(spec: IndexSpec) -> list[tuple[Any, str]]:
    if spec.metric == "ip":
        nan = np.ones((1, spec.dim), dtype=np.float32)
        nan[0, 0] = np.nan
        return [
            (np.ones((1, spec.dim + 1), dtype=np.float32), "shape"),
            (np.ones(spec.dim, dtype=np.float32), "shape"),
            (np.ones((1, spec.dim), dtype=np.int32), "floating"),
            (nan, "NaN"),
            (np.full((1, spec.dim), 1e300), "NaN or infinity"),
        ]
    return [
        (np.zeros((1, spec.dim // 8 + 1), dtype=np.uint8), "shape"),
        (np.zeros((1, spec.dim), dtype=np.uint8), "shape"),
        (np.zeros((1, spec.dim // 8), dtype=np.int64), "uint8"),
        (np.zeros((1, spec.dim // 8), dtype=np.float32), "uint8"),
    ]


def test_bad_vectors_in_add_and_search(index: VectorIndex) -> None:
    for vectors, match in bad_vectors(index.spec):
        with pytest.raises(ValueError, match=match):
            index.add(np.array([7]), vectors)
        with pytest.raises(ValueError, match=match):
            index.search(vectors, k=1)
    assert len(index) == 2


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (np.array([1.0]), "integers"),
        (np.array([-1]), "non-negative"),
        (np.array([[1]]), "1-D"),
        (np.array([2**64 - 1], dtype=np.uint64), "int64"),
        ([10**30], "integers"),
        (np.array([True]), "integers"),
    ],
)
def test_bad_ids(index: VectorIndex, ids: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        index.add(ids, good_rows(index.spec, 1))
    with pytest.raises(ValueError, match=match):
        index.remove(ids)


def test_add_checks_lengths_and_duplicates(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        index.add(np.array([5, 6]), good_rows(index.spec, 1))
    with pytest.raises(ValueError, match="repeat"):
        index.add(np.array([5, 5]), good_rows(index.spec, 2))
    assert len(index) == 2


def test_add_accepts_lists_other_int_types_and_float64(index: VectorIndex) -> None:
    rows = good_rows(index.spec, 2)
    if index.spec.metric == "ip":
        rows = rows.astype(np.float64)
    index.add([10, 11], rows)  # type: ignore[arg-type]
    index.add(np.array([12], dtype=np.uint32), good_rows(index.spec, 1))
    index.add(np.array([], dtype=np.int64), good_rows(index.spec, 0))
    assert index.ids().tolist() == [1, 2, 10, 11, 12]
    assert index.remove([]) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "k, radius or both"),
        ({"k": 0}, "k must be >= 1"),
        ({"k": 2.5}, "k must be an int"),
        ({"k": True}, "k must be an int"),
        ({"radius": float("nan")}, "finite"),
        ({"radius": "31"}, "number"),
    ],
)
def test_bad_query_arguments(index: VectorIndex, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        index.search(good_rows(index.spec, 1), **kwargs)


def test_negative_hamming_radius_finds_nothing() -> None:
    for structure in ("numpy", "BFlat", "BMIH4"):
        idx = create(BINARY, structure)
        idx.add(np.array([1]), good_rows(BINARY, 1))
        assert len(idx.search(good_rows(BINARY, 1), radius=-1).ids[0]) == 0
        assert len(idx.search(good_rows(BINARY, 1), radius=0).ids[0]) == 1
