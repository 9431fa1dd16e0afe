"""``MilvusIndex`` against a real Milvus server: congruence with FAISS at 20k vectors,
sharing one collection between two handles, and refusals of bad input.

The protocol itself (every structure against the numpy reference) is in
``tests/contract/test_vector_index_milvus.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from screener.index import (
    IndexSpec,
    IndexSpecMismatch,
    MilvusIndex,
    MilvusUnavailable,
    create,
)
from tests.contract.synth import (
    clustered_vectors,
    flip_bits,
    near_duplicate_codes,
    perturb_vectors,
    unique_ids,
)

pytestmark = pytest.mark.slow

N = 20_000
K = 10


@pytest.fixture
def names(milvus_uri: str) -> Iterator[list[str]]:
    """Collection names a test makes; dropped afterwards."""
    from pymilvus import connections, utility

    made: list[str] = []
    yield made
    alias = f"cleanup-{uuid.uuid4().hex[:8]}"
    connections.connect(alias, uri=milvus_uri)
    try:
        for name in made:
            if utility.has_collection(name, using=alias):
                utility.drop_collection(name, using=alias)
    finally:
        connections.disconnect(alias)


def fresh_name(names: list[str]) -> str:
    names.append(f"t_{uuid.uuid4().hex}")
    return names[-1]


def test_dense_top_k_equals_faiss_flat(milvus_uri: str, names: list[str]) -> None:
    """FLAT (and HNSW on near-duplicates) against faiss's exact Flat on 20k vectors."""
    rng = np.random.default_rng(5)
    spec = IndexSpec("sscd-congruence", 128, "ip")
    vectors = clustered_vectors(rng, N, spec.dim, clusters=400, noise=0.08)
    ids = unique_ids(rng, N)
    near = perturb_vectors(rng, vectors[rng.choice(N, 100, replace=False)], 0.02)
    fresh = clustered_vectors(rng, 100, spec.dim, clusters=400, noise=0.08)
    queries = np.concatenate([near, fresh])

    faiss_flat = create(spec, "Flat")
    faiss_flat.add(ids, vectors)
    want = faiss_flat.search(queries, k=K)

    flat = create(spec, "milvus:FLAT", uri=milvus_uri, collection=fresh_name(names))
    hnsw = create(spec, "milvus:HNSW", uri=milvus_uri, collection=fresh_name(names))
    for index in (flat, hnsw):
        assert isinstance(index, MilvusIndex)
        index.add(ids, vectors)
        index.flush()  # sealed and indexed: the index type, not a brute-force buffer, answers
        assert len(index) == N

    got = flat.search(queries, k=K)
    for g, w, gs, ws in zip(got.ids, want.ids, got.scores, want.scores, strict=True):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_allclose(gs, ws, rtol=0, atol=1e-5)
    radius = float(np.median([s[K // 2] for s in want.scores]))
    ranged, ranged_want = (
        flat.search(queries, radius=radius),
        faiss_flat.search(queries, radius=radius),
    )
    for g, w in zip(ranged.ids, ranged_want.ids, strict=True):
        np.testing.assert_array_equal(g, w)

    approx = hnsw.search(near, k=1)
    exact = faiss_flat.search(near, k=1)
    agree = np.mean([a[0] == e[0] for a, e in zip(approx.ids, exact.ids, strict=True)])
    assert agree >= 0.99, f"HNSW top-1 agreed with Flat on {agree:.2%} of near-duplicates"


def test_binary_top_k_equals_faiss_bflat(milvus_uri: str, names: list[str]) -> None:
    """BIN_FLAT against faiss's BFlat on 20k 256-bit codes: same ids (ties to the smaller
    id), same distances, by k and by radius; BIN_IVF_FLAT finds the same top distance."""
    rng = np.random.default_rng(6)
    spec = IndexSpec("pdq-congruence", 256, "hamming")
    codes, base = near_duplicate_codes(rng, N // 5, 5, spec.dim, max_flips=40)
    ids = unique_ids(rng, len(codes))
    queries = np.concatenate(
        [
            flip_bits(rng, codes[rng.choice(len(codes), 100, replace=False)], 20),
            rng.integers(0, 256, (100, spec.dim // 8), dtype=np.uint8),
        ]
    )
    bflat = create(spec, "BFlat")
    bflat.add(ids, codes)
    exact = create(spec, "milvus:BIN_FLAT", uri=milvus_uri, collection=fresh_name(names))
    ivf = create(
        spec, "milvus:BIN_IVF_FLAT", uri=milvus_uri, collection=fresh_name(names), nlist=64
    )
    for index in (exact, ivf):
        assert isinstance(index, MilvusIndex)
        index.add(ids, codes)
        index.flush()
    for kwargs in ({"k": K}, {"radius": 31}, {"k": 3, "radius": 31}):
        got, want = exact.search(queries, **kwargs), bflat.search(queries, **kwargs)
        for g, w, gs, ws in zip(got.ids, want.ids, got.scores, want.scores, strict=True):
            np.testing.assert_array_equal(g, w)
            np.testing.assert_array_equal(gs, ws)
    near = queries[:100]
    approx, truth = ivf.search(near, k=1), bflat.search(near, k=1)
    same = np.mean([a[0] == t[0] for a, t in zip(approx.scores, truth.scores, strict=True)])
    assert same >= 0.95, f"BIN_IVF_FLAT found the best distance for {same:.2%}"
    assert len(base) == N // 5


def test_two_handles_share_one_collection(milvus_uri: str, names: list[str]) -> None:
    """What two service instances do: writes through one are seen by the other once it
    has read with Strong consistency; replaying the same writes changes nothing; the
    stored high-water mark only rises."""
    rng = np.random.default_rng(8)
    spec = IndexSpec("shared", 16, "ip")
    name = fresh_name(names)
    one = MilvusIndex(spec, uri=milvus_uri, collection=name)
    two = MilvusIndex(spec, uri=milvus_uri, collection=name, consistency="Bounded")
    vectors = clustered_vectors(rng, 50, spec.dim, clusters=5, noise=0.05)
    ids = np.arange(100, 150, dtype=np.int64)
    one.add(ids, vectors)
    np.testing.assert_array_equal(two.present(ids), ids)  # Strong: waits for one's writes
    assert two.search(vectors[:1], k=1).ids[0][0] == 100
    two.add(ids, vectors)  # a replay by the other instance
    assert len(one.ids()) == 50
    assert one.remove(ids[:10]) == 10
    assert two.remove(ids[:10]) == 0
    assert not np.isin(two.search(vectors[:10], k=3).ids, ids[:10]).any()
    one.set_high_water(40)
    two.set_high_water(12)
    assert one.high_water == two.high_water == 40


def test_attaching_checks_the_spec_and_structure(milvus_uri: str, names: list[str]) -> None:
    name = fresh_name(names)
    spec = IndexSpec("sscd", 8, "ip")
    made = MilvusIndex(spec, "HNSW", uri=milvus_uri, collection=name, ef_search=32)
    assert made.kind == "milvus:HNSW"
    again = MilvusIndex(spec, uri=milvus_uri, collection=name)  # "auto" adopts what is there
    assert again.kind == "milvus:HNSW" and again.params["ef_search"] == 32
    with pytest.raises(IndexSpecMismatch, match="built for"):
        MilvusIndex(IndexSpec("sscd-v2", 8, "ip"), uri=milvus_uri, collection=name)
    with pytest.raises(IndexSpecMismatch, match="indexed as HNSW"):
        MilvusIndex(spec, "FLAT", uri=milvus_uri, collection=name)


def test_bad_input_is_refused(milvus_uri: str) -> None:
    dense, binary = IndexSpec("d", 8, "ip"), IndexSpec("b", 64, "hamming")
    with pytest.raises(ValueError, match="unsupported milvus structure"):
        MilvusIndex(dense, "BIN_FLAT", uri=milvus_uri)
    with pytest.raises(ValueError, match="unsupported milvus structure"):
        MilvusIndex(binary, "HNSW", uri=milvus_uri)
    with pytest.raises(ValueError, match="do not apply"):
        MilvusIndex(dense, "FLAT", uri=milvus_uri, nprobe=4)
    with pytest.raises(ValueError, match="collection name"):
        MilvusIndex(dense, uri=milvus_uri, collection="no-dashes allowed")
    with pytest.raises(ValueError, match="consistency"):
        MilvusIndex(dense, uri=milvus_uri, consistency="Sometimes")
    with pytest.raises(ValueError, match="needs a uri"):
        MilvusIndex(dense, uri="")
    with pytest.raises(ValueError, match="ef_search"):
        MilvusIndex(dense, "HNSW", uri=milvus_uri, ef_search=0)


def test_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("screener.index._milvus_conn.CONNECT_TIMEOUT_S", 1.0)  # no server: no wait
    with pytest.raises(
        MilvusUnavailable, match=r"cannot connect to Milvus at http://127\.0\.0\.1:9"
    ):
        MilvusIndex(IndexSpec("d", 8, "ip"), uri="http://127.0.0.1:9")
