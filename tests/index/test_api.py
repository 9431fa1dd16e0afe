"""The package's front door: ``choose_structure``, ``create`` and ``load`` dispatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from screener import index
from screener.index import (
    FaissBinaryIndex,
    FaissDenseIndex,
    IndexCorrupt,
    IndexError_,
    IndexSpec,
    IndexSpecMismatch,
    NumpyIndex,
    choose_structure,
    create,
    load,
)

DENSE = IndexSpec("sscd", 16, "ip")
PDQ = IndexSpec("pdq", 256, "hamming")


def test_exceptions_share_a_base() -> None:
    assert issubclass(IndexSpecMismatch, IndexError_)
    assert issubclass(IndexCorrupt, IndexError_)


def test_reexports_the_protocol_names() -> None:
    for name in ("VectorIndex", "IndexSpec", "Neighbours", "Manifest", "IdArray", "Metric"):
        assert name in index.__all__
        assert hasattr(index, name)


@pytest.mark.parametrize(
    ("metric", "size", "expected"),
    [
        ("ip", 0, "Flat"),
        ("ip", 50_000, "Flat"),
        ("ip", 50_001, "IVF447,Flat"),
        ("ip", 10**6, "IVF2000,Flat"),
        ("hamming", 50_000, "BFlat"),
        ("hamming", 10**7, "BFlat"),
    ],
)
def test_choose_structure_defaults(metric: str, size: int, expected: str) -> None:
    assert choose_structure(metric, size) == expected  # type: ignore[arg-type]


def test_choose_structure_keywords_move_the_threshold() -> None:
    assert choose_structure("ip", 1000, approx_above=999) == "IVF63,Flat"
    assert choose_structure("ip", 1000, approx_above=999, dense_approx="HNSW32") == "HNSW32"
    assert choose_structure("ip", 1000, approx_above=999, dense_approx="IVF64,Flat") == (
        "IVF64,Flat"
    )
    assert choose_structure("hamming", 1000, approx_above=10, binary_approx="BMIH8") == "BMIH8"
    with pytest.raises(ValueError, match="metric"):
        choose_structure("cosine", 10)  # type: ignore[arg-type]


def test_create_auto() -> None:
    assert isinstance(create(DENSE), FaissDenseIndex)
    assert create(DENSE).kind == "faiss:Flat"
    assert create(DENSE, expected_size=10**6).kind == "faiss:IVF2000,Flat"
    assert create(PDQ).kind == "faiss:BFlat"
    assert create(PDQ, expected_size=10**6).kind == "faiss:BFlat"


def test_create_named_structures() -> None:
    assert isinstance(create(DENSE, "numpy"), NumpyIndex)
    assert isinstance(create(PDQ, "numpy"), NumpyIndex)
    assert isinstance(create(PDQ, "BMIH16", max_flips=1), FaissBinaryIndex)
    hnsw = create(DENSE, "HNSW16", ef_search=40)
    assert isinstance(hnsw, FaissDenseIndex)
    assert hnsw.ef_search == 40


@pytest.mark.parametrize(
    ("spec", "structure", "params", "match"),
    [
        (DENSE, "BFlat", {}, "unsupported dense structure"),
        (DENSE, "LSH", {}, "unsupported dense structure"),
        (DENSE, "IVF4,Bogus", {}, "cannot build"),
        (PDQ, "HNSW32", {}, "unsupported binary structure"),
        (PDQ, "BMIH2", {}, "between 1 and 64"),
        (PDQ, "BMIH512", {}, "between 1 and 64"),
        (DENSE, "numpy", {"ef_search": 3}, "no parameters"),
        (DENSE, "Flat", {"nprobe": 3}, "do not apply"),
        (DENSE, "HNSW32", {"nprobe": 3}, "do not apply"),
        (DENSE, "IVF4,Flat", {"ef_search": 3}, "do not apply"),
        (PDQ, "BFlat", {"max_flips": 1}, "do not apply"),
        (DENSE, "HNSW32", {"ef_search": 0}, "ef_search"),
        (DENSE, "IVF4,Flat", {"train_min": 2}, "train_min"),
        (IndexSpec("x", 12, "hamming"), "BFlat", {}, "multiple of 8"),
        (IndexSpec("x", 0, "ip"), "Flat", {}, "positive"),
        (IndexSpec("x", 8, "cosine"), "Flat", {}, "metric"),  # type: ignore[arg-type]
    ],
)
def test_create_rejects(
    spec: IndexSpec, structure: str, params: dict[str, int], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        create(spec, structure, **params)


def test_load_returns_the_saved_kind(tmp_path: Path) -> None:
    for structure in ("numpy", "BFlat", "BMIH16"):
        idx = create(PDQ, structure)
        idx.add(np.array([3, 9]), np.zeros((2, 32), dtype=np.uint8))
        path = tmp_path / f"{structure}.idx"
        idx.save(path, high_water=9)
        loaded, manifest = load(path, PDQ)
        assert loaded.kind == idx.kind == manifest.kind
        assert manifest.high_water == 9


def test_load_mismatch_is_checked_before_the_index_file(tmp_path: Path) -> None:
    path = tmp_path / "a.idx"
    create(DENSE).save(path, high_water=0)
    path.unlink()  # a wrong spec is reported as such even when the index file is gone
    with pytest.raises(IndexSpecMismatch, match="sscd"):
        load(path, IndexSpec("other", 16, "ip"))
