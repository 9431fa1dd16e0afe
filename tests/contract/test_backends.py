"""Index backends registered by name, one factory string to pick one, and the contract
suite running every registered backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from screener import index
from screener.index import IndexSpec, Manifest, NumpyIndex, VectorIndex, backends
from tests.contract.test_vector_index import CASES
from tests.contract.test_vector_index_milvus import MILVUS_CASES

DENSE = IndexSpec("sscd-test", 8, "ip")
BINARY = IndexSpec("pdq-test", 64, "hamming")


def test_the_contract_suite_runs_every_registered_backend() -> None:
    run = {backends.parse(c.structure)[0] for c in [*CASES.values(), *MILVUS_CASES.values()]}
    assert run == set(index.backend_names()) == {"faiss", "milvus", "numpy"}


@pytest.mark.parametrize(
    ("description", "parsed"),
    [
        ("faiss:IVF1024,Flat", ("faiss", "IVF1024,Flat")),
        ("faiss:Flat", ("faiss", "Flat")),
        ("faiss", ("faiss", "auto")),
        ("faiss:", ("faiss", "auto")),
        ("milvus:HNSW", ("milvus", "HNSW")),
        ("milvus", ("milvus", "auto")),
        ("numpy", ("numpy", "auto")),
        # What settings have always held: a FAISS factory string or auto, no backend.
        ("IVF16,Flat", ("faiss", "IVF16,Flat")),
        ("BFlat", ("faiss", "BFlat")),
        ("auto", ("faiss", "auto")),
    ],
)
def test_a_factory_string_names_a_backend_and_its_structure(
    description: str, parsed: tuple[str, str]
) -> None:
    assert backends.parse(description) == parsed


@pytest.mark.parametrize(
    ("description", "complaint"),
    [
        ("annoy:Flat", "unknown index backend 'annoy'; known: faiss, milvus, numpy"),
        ("", "non-empty"),
        ("   ", "non-empty"),
    ],
)
def test_a_bad_factory_string_says_what_is_wrong(description: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        index.create(DENSE, description)


@pytest.mark.parametrize(
    ("with_backend", "without"),
    [("faiss:IVF16,Flat", "IVF16,Flat"), ("faiss:Flat", "Flat"), ("faiss:BFlat", "BFlat")],
)
def test_the_backend_prefix_names_the_same_index(with_backend: str, without: str) -> None:
    spec = BINARY if "BFlat" in without else DENSE
    assert index.create(spec, with_backend).kind == index.create(spec, without).kind


def test_auto_still_chooses_by_size() -> None:
    assert index.create(DENSE, "faiss:auto", expected_size=10).kind == "faiss:Flat"
    assert index.create(BINARY, "auto", expected_size=10).kind == "faiss:BFlat"


def test_the_numpy_backend_has_no_structures() -> None:
    assert isinstance(index.create(DENSE, "numpy"), NumpyIndex)
    with pytest.raises(ValueError, match="no structures"):
        index.create(DENSE, "numpy:Flat")


@pytest.fixture
def echo_backend() -> Iterator[str]:
    """A backend added by one registration call: the numpy reference under another name."""

    def make(spec: IndexSpec, structure: str, expected_size: int = 0, **params: Any) -> NumpyIndex:
        return NumpyIndex(spec)

    def restore(manifest: Manifest, arrays: dict[str, Any], options: dict[str, Any]) -> VectorIndex:
        return NumpyIndex.from_arrays(manifest.spec, arrays)

    backends.register_backend("echo", make=make, restore=restore)
    yield "echo"
    backends.unregister_backend("echo")


def test_a_new_backend_is_one_registration(echo_backend: str) -> None:
    made = index.create(DENSE, f"{echo_backend}:anything")
    made.add(np.array([3], dtype=np.int64), np.eye(1, 8, dtype=np.float32))
    assert made.search(np.eye(1, 8, dtype=np.float32), k=1).ids[0].tolist() == [3]
    assert echo_backend in index.backend_names()


def test_a_backend_name_is_one_lower_case_word() -> None:
    with pytest.raises(ValueError, match="one lower-case word"):
        backends.register_backend("Faiss HNSW", make=NumpyIndex, restore=NumpyIndex.from_arrays)  # type: ignore[arg-type]
