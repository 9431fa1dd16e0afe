"""The vector-index contract (``test_vector_index``) run against a real Milvus server.

The same test functions run here with Milvus structures as the cases, on the session's
server (``milvus`` fixture); each case has a collection, emptied before every test.
Exact structures (FLAT, BIN_FLAT) must answer exactly as the numpy reference does;
approximate ones (HNSW, IVF_FLAT) with true scores, best first, recall >= 0.95. The
search tests run on every structure; the rest (ids, removal, persistence), whose code
does not depend on the structure, on FLAT and BIN_FLAT.
BIN_IVF_FLAT is left to ``tests/index/test_milvus.py``: on integer distances an
approximate structure may pick another of several ids tied at the top, which the
contract's recall count would call a miss.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from screener.index import MilvusIndex, create
from tests.contract import test_vector_index as contract
from tests.contract.test_vector_index import DATA, Case, Data, _corruptions

pytestmark = pytest.mark.slow

MILVUS_CASES = {
    "milvus:FLAT": Case("milvus:FLAT", "ip", exact=True),
    "milvus:HNSW": Case("milvus:HNSW", "ip", exact=False, params={"M": 16, "ef_search": 64}),
    "milvus:IVF_FLAT": Case(
        "milvus:IVF_FLAT", "ip", exact=False, params={"nlist": 16, "nprobe": 12}
    ),
    "milvus:BIN_FLAT": Case("milvus:BIN_FLAT", "hamming", exact=True),
}


@pytest.fixture(scope="module")
def collections(milvus_uri: str) -> Iterator[dict[str, str]]:
    """One collection per case for the module, dropped at its end.

    Making and loading a collection costs about 3 s, so the tests of a case share one,
    emptied before each test (see ``_case``): to the protocol an emptied collection is a
    fresh index, and that is also how a shared collection is reused in production.
    """
    from pymilvus import connections, utility

    names = {case: f"contract_{uuid.uuid4().hex}" for case in MILVUS_CASES}
    yield names
    alias = f"contract-cleanup-{uuid.uuid4().hex[:8]}"
    connections.connect(alias, uri=milvus_uri)
    try:
        for name in names.values():
            if utility.has_collection(name, using=alias):
                utility.drop_collection(name, using=alias)
    finally:
        connections.disconnect(alias)


@pytest.fixture(params=sorted(MILVUS_CASES), name="case")
def _case(request: pytest.FixtureRequest, milvus_uri: str, collections: dict[str, str]) -> Case:
    """The case with the server's URI and its collection, emptied for this test."""
    base = MILVUS_CASES[request.param]
    case = replace(
        base, params={**base.params, "uri": milvus_uri, "collection": collections[request.param]}
    )
    index = create(DATA[case.metric].spec, case.structure, **case.params)
    assert isinstance(index, MilvusIndex)
    index.clear()
    return case


@pytest.fixture(name="data")
def _data(case: Case) -> Data:
    return DATA[case.metric]


EXACT_CASES = ["milvus:BIN_FLAT", "milvus:FLAT"]


def _on(cases: list[str], test: Callable[..., None]) -> Callable[..., None]:
    """``test`` (a contract test) run on ``cases`` only."""

    def run(**fixtures: object) -> None:
        test(**fixtures)

    wrapped: Callable[..., None] = functools.wraps(test)(run)
    marked: Callable[..., None] = pytest.mark.parametrize("case", cases, indirect=True)(wrapped)
    return marked


# How a search is answered is what differs between structures: these run on every case.
test_protocol_and_kind = _on(sorted(MILVUS_CASES), contract.test_protocol_and_kind)
test_search_by_k = _on(sorted(MILVUS_CASES), contract.test_search_by_k)
test_search_by_radius = _on(sorted(MILVUS_CASES), contract.test_search_by_radius)
test_search_by_k_and_radius = _on(sorted(MILVUS_CASES), contract.test_search_by_k_and_radius)
# Ids, removal, replacement, persistence and the saved descriptor take the same code for
# every Milvus structure: these run on one dense and one binary case.
test_len_and_ids = _on(EXACT_CASES, contract.test_len_and_ids)
test_k_larger_than_index = _on(EXACT_CASES, contract.test_k_larger_than_index)
test_remove_then_search = _on(EXACT_CASES, contract.test_remove_then_search)
test_readd_replaces = _on(EXACT_CASES, contract.test_readd_replaces)
test_empty_index = _on(EXACT_CASES, contract.test_empty_index)
test_no_queries = _on(EXACT_CASES, contract.test_no_queries)
test_save_load_round_trip = _on(EXACT_CASES, contract.test_save_load_round_trip)
test_load_with_other_spec_raises_mismatch = _on(
    EXACT_CASES, contract.test_load_with_other_spec_raises_mismatch
)
test_crash_between_renames_is_detected = _on(
    EXACT_CASES, contract.test_crash_between_renames_is_detected
)


@pytest.mark.parametrize("damage", sorted(_corruptions()))
@pytest.mark.parametrize("case", EXACT_CASES, indirect=True)
def test_damaged_files_raise_corrupt(case: Case, data: Data, tmp_path: Path, damage: str) -> None:
    """The saved descriptor is the same for every structure: one dense, one binary."""
    contract.test_damaged_files_raise_corrupt(case, data, tmp_path, damage)
