"""One contract, every implementation, ``NumpyIndex`` as the ground truth.

Exact structures (numpy, Flat, BFlat, BMIH) must answer exactly as the reference does.
Approximate ones (HNSW, IVF) must return correctly scored, correctly ordered hits with
recall >= 0.95 on clustered data. Everything must honour removal, replacement, the radius,
persistence and the failure modes of ``load``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from screener.index import (
    IndexCorrupt,
    IndexSpec,
    IndexSpecMismatch,
    Neighbours,
    NumpyIndex,
    VectorIndex,
    create,
    load,
    read_manifest,
)
from tests.contract.synth import (
    clustered_vectors,
    flip_bits,
    near_duplicate_codes,
    perturb_vectors,
    unique_ids,
)

RECALL = 0.95


@dataclass(frozen=True)
class Case:
    structure: str
    metric: str
    exact: bool
    params: dict[str, Any] = field(default_factory=dict)


CASES = {
    "numpy-ip": Case("numpy", "ip", exact=True),
    "numpy-hamming": Case("numpy", "hamming", exact=True),
    "Flat": Case("Flat", "ip", exact=True),
    "HNSW32": Case("HNSW32", "ip", exact=False, params={"ef_search": 64, "compact_min": 100}),
    "IVF16,Flat": Case("IVF16,Flat", "ip", exact=False, params={"nprobe": 4}),
    "BFlat": Case("BFlat", "hamming", exact=True),
    "BMIH16": Case("BMIH16", "hamming", exact=True, params={"compact_min": 100}),
}


@dataclass(frozen=True)
class Data:
    spec: IndexSpec
    ids: npt.NDArray[np.int64]
    vectors: npt.NDArray[Any]
    queries: npt.NDArray[Any]
    fresh: npt.NDArray[Any]  # replacement vectors for re-adding ids
    radius: float
    tol: float


def _dense() -> Data:
    rng = np.random.default_rng(7)
    n, dim = 2000, 32
    vectors = clustered_vectors(rng, n, dim, clusters=40, noise=0.06)
    queries = perturb_vectors(rng, vectors[rng.choice(n, 40, replace=False)], 0.03)
    fresh = clustered_vectors(rng, 200, dim, clusters=40, noise=0.06)
    spec = IndexSpec("sscd-test", dim, "ip")
    ref = NumpyIndex(spec)
    ids = unique_ids(rng, n)
    ref.add(ids, vectors)
    fifth = ref.search(queries, k=5).scores
    radius = float(np.median([s[4] for s in fifth]))
    return Data(spec, ids, vectors, queries, fresh, radius, tol=1e-5)


def _binary() -> Data:
    rng = np.random.default_rng(11)
    codes, base = near_duplicate_codes(rng, 400, 5, 256, max_flips=40)
    queries = flip_bits(rng, base[rng.choice(400, 40, replace=False)], 40)
    fresh = flip_bits(rng, base[rng.choice(400, 200)], 40)
    spec = IndexSpec("pdq-test", 256, "hamming")
    return Data(spec, unique_ids(rng, len(codes)), codes, queries, fresh, radius=31, tol=0)


DATA = {"ip": _dense(), "hamming": _binary()}


@pytest.fixture(params=sorted(CASES), name="case")
def _case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture(name="data")
def _data(case: Case) -> Data:
    return DATA[case.metric]


def build(case: Case, data: Data) -> VectorIndex:
    """The index under test and the reference, filled in two batches (IVF trains on both)."""
    index = create(data.spec, case.structure, **case.params)
    index.add(data.ids[:300], data.vectors[:300])
    index.add(data.ids[300:], data.vectors[300:])
    return index


def reference(data: Data) -> NumpyIndex:
    ref = NumpyIndex(data.spec)
    ref.add(data.ids, data.vectors)
    return ref


def true_scores(ref: NumpyIndex, query: npt.NDArray[Any]) -> dict[int, float]:
    """Every id's score for ``query`` according to the reference."""
    everything = -1e30 if ref.spec.metric == "ip" else float(ref.spec.dim)
    got = ref.search(query[None, :], radius=everything)
    return dict(zip(got.ids[0].tolist(), got.scores[0].tolist(), strict=True))


def check(case: Case, got: Neighbours, want: Neighbours, ref: NumpyIndex, data: Data) -> None:
    """Exact cases: identical to ``want``. Approximate: true scores, best first, recall."""
    assert len(got.ids) == len(want.ids) == len(got.scores)
    higher = data.spec.metric == "ip"
    for ids, scores in zip(got.ids, got.scores, strict=True):
        assert ids.dtype == np.int64
        assert scores.dtype == np.float32
        assert len(ids) == len(scores) == len(np.unique(ids))
        steps = np.diff(scores)
        assert np.all(steps <= data.tol) if higher else np.all(steps >= 0)
    if case.exact:
        for gi, gs, wi, ws in zip(got.ids, got.scores, want.ids, want.scores, strict=True):
            np.testing.assert_array_equal(gi, wi)
            np.testing.assert_allclose(gs, ws, rtol=0, atol=data.tol)
        return
    found = sum(len(np.intersect1d(g, w)) for g, w in zip(got.ids, want.ids, strict=True))
    total = sum(len(w) for w in want.ids)
    assert found >= RECALL * total, f"recall {found / max(total, 1):.3f} < {RECALL}"
    for q, ids, scores in zip(data.queries, got.ids, got.scores, strict=True):
        truth = true_scores(ref, q)
        expected = np.array([truth[i] for i in ids.tolist()], dtype=np.float32)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=data.tol)


def test_protocol_and_kind(case: Case, data: Data) -> None:
    index = create(data.spec, case.structure, **case.params)
    assert isinstance(index, VectorIndex)
    assert index.spec == data.spec
    assert case.structure in index.kind


def test_len_and_ids(case: Case, data: Data) -> None:
    index = build(case, data)
    assert len(index) == len(data.ids)
    np.testing.assert_array_equal(index.ids(), np.sort(data.ids))
    assert index.ids().dtype == np.int64


def test_search_by_k(case: Case, data: Data) -> None:
    index, ref = build(case, data), reference(data)
    for k in (1, 10):
        check(case, index.search(data.queries, k=k), ref.search(data.queries, k=k), ref, data)


def test_k_larger_than_index(case: Case, data: Data) -> None:
    index = create(data.spec, case.structure, **case.params)
    index.add(data.ids[:5], data.vectors[:5])
    got = index.search(data.queries[:3], k=50)
    assert all(len(ids) == 5 for ids in got.ids)


def test_search_by_radius(case: Case, data: Data) -> None:
    index, ref = build(case, data), reference(data)
    want = ref.search(data.queries, radius=data.radius)
    assert sum(len(w) for w in want.ids) > len(data.queries)  # the radius is not trivial
    got = index.search(data.queries, radius=data.radius)
    check(case, got, want, ref, data)
    for scores in got.scores:
        inside = scores >= data.radius if data.spec.metric == "ip" else scores <= data.radius
        assert inside.all()


def test_search_by_k_and_radius(case: Case, data: Data) -> None:
    index, ref = build(case, data), reference(data)
    got = index.search(data.queries, k=3, radius=data.radius)
    check(case, got, ref.search(data.queries, k=3, radius=data.radius), ref, data)
    assert all(len(ids) <= 3 for ids in got.ids)


def test_remove_then_search(case: Case, data: Data) -> None:
    index, ref = build(case, data), reference(data)
    # remove the current best hits of every query, plus a random third of the rest
    best = np.unique(np.concatenate(ref.search(data.queries, k=2).ids))
    gone = np.unique(np.concatenate([best, data.ids[::3]]))
    absent = np.array([10**12, 10**12 + 1], dtype=np.int64)
    assert index.remove(np.concatenate([gone, absent])) == len(gone)
    assert ref.remove(gone) == len(gone)
    assert index.remove(gone) == 0
    assert len(index) == len(data.ids) - len(gone)
    np.testing.assert_array_equal(index.ids(), ref.ids())
    got = index.search(data.queries, k=10)
    assert not np.isin(np.concatenate(got.ids), gone).any()
    check(case, got, ref.search(data.queries, k=10), ref, data)
    check(
        case,
        index.search(data.queries, radius=data.radius),
        ref.search(data.queries, radius=data.radius),
        ref,
        data,
    )


def test_readd_replaces(case: Case, data: Data) -> None:
    index, ref = build(case, data), reference(data)
    again = data.ids[: len(data.fresh)]
    index.add(again, data.fresh)
    ref.add(again, data.fresh)
    assert len(index) == len(data.ids)
    np.testing.assert_array_equal(index.ids(), ref.ids())
    # the new vector finds its id at the top with the new score
    top = index.search(data.fresh[:20], k=1)
    best = 1.0 if data.spec.metric == "ip" else 0.0
    for i, (ids, scores) in enumerate(zip(top.ids, top.scores, strict=True)):
        assert scores[0] == pytest.approx(best, abs=1e-5)
        truth = true_scores(ref, data.fresh[i])
        assert truth[int(ids[0])] == pytest.approx(best, abs=1e-5)
    check(case, index.search(data.queries, k=10), ref.search(data.queries, k=10), ref, data)


def test_empty_index(case: Case, data: Data) -> None:
    index = create(data.spec, case.structure, **case.params)
    assert len(index) == 0
    assert index.ids().shape == (0,)
    for kwargs in ({"k": 5}, {"radius": data.radius}, {"k": 5, "radius": data.radius}):
        got = index.search(data.queries[:3], **kwargs)
        assert len(got.ids) == len(got.scores) == 3
        for ids, scores in zip(got.ids, got.scores, strict=True):
            assert ids.shape == scores.shape == (0,)
            assert ids.dtype == np.int64
            assert scores.dtype == np.float32
    index.add(data.ids[:4], data.vectors[:4])
    index.remove(data.ids[:4])
    assert all(len(ids) == 0 for ids in index.search(data.queries[:2], k=3).ids)


def test_no_queries(case: Case, data: Data) -> None:
    index = build(case, data)
    got = index.search(data.queries[:0], k=3)
    assert got.ids == []
    assert got.scores == []


def test_save_load_round_trip(case: Case, data: Data, tmp_path: Path) -> None:
    index = build(case, data)
    index.remove(data.ids[::4])  # tombstones, for the structures that keep them
    path = tmp_path / "registry.index"
    manifest = index.save(path, high_water=1234)
    assert manifest.spec == data.spec
    assert manifest.count == len(index)
    assert manifest.high_water == 1234
    assert manifest.kind == index.kind
    assert read_manifest(path) == manifest
    loaded, read_back = load(path, data.spec)
    assert read_back == manifest
    assert type(loaded) is type(index)
    assert loaded.kind == index.kind
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    for kwargs in ({"k": 10}, {"radius": data.radius}, {"k": 3, "radius": data.radius}):
        before, after = index.search(data.queries, **kwargs), loaded.search(data.queries, **kwargs)
        for b, a in zip([*before.ids, *before.scores], [*after.ids, *after.scores], strict=True):
            np.testing.assert_array_equal(a, b)
    # the loaded index is still a working, mutable index
    loaded.add(data.ids[:1], data.fresh[:1])
    assert loaded.search(data.fresh[:1], k=1).ids[0][0] == data.ids[0]


def test_load_with_other_spec_raises_mismatch(case: Case, data: Data, tmp_path: Path) -> None:
    index = build(case, data)
    path = tmp_path / "registry.index"
    index.save(path, high_water=0)
    s = data.spec
    others = [
        IndexSpec(s.spec_id + "-v2", s.dim, s.metric),
        IndexSpec(s.spec_id, s.dim * 2, s.metric),
        IndexSpec(s.spec_id, s.dim, "hamming" if s.metric == "ip" else "ip"),
    ]
    for other in others:
        with pytest.raises(IndexSpecMismatch) as info:
            load(path, other)
        assert str(s) in str(info.value)
        assert str(other) in str(info.value)


def _corruptions() -> dict[str, Any]:
    def truncate(p: Path) -> None:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

    def edit(p: Path) -> None:
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))

    def drop_index(p: Path) -> None:
        p.unlink()

    def drop_manifest(p: Path) -> None:
        Path(f"{p}.json").unlink()

    def garble_manifest(p: Path) -> None:
        Path(f"{p}.json").write_text("{not json")

    def forge_count(p: Path) -> None:
        m = Path(f"{p}.json")
        doc = json.loads(m.read_text())
        doc["count"] += 1
        m.write_text(json.dumps(doc))

    return {
        "truncate": truncate,
        "edit": edit,
        "drop_index": drop_index,
        "drop_manifest": drop_manifest,
        "garble_manifest": garble_manifest,
        "forge_count": forge_count,
    }


@pytest.mark.parametrize("damage", sorted(_corruptions()))
def test_damaged_files_raise_corrupt(case: Case, data: Data, tmp_path: Path, damage: str) -> None:
    index = build(case, data)
    path = tmp_path / "registry.index"
    index.save(path, high_water=0)
    _corruptions()[damage](path)
    with pytest.raises(IndexCorrupt):
        load(path, data.spec)


def test_crash_between_renames_is_detected(case: Case, data: Data, tmp_path: Path) -> None:
    """New index bytes under an old manifest (the crash window) must not load."""
    index = build(case, data)
    path = tmp_path / "registry.index"
    index.save(path, high_water=1)
    old_manifest = Path(f"{path}.json").read_bytes()
    index.remove(data.ids[:10])
    index.save(path, high_water=2)
    Path(f"{path}.json").write_bytes(old_manifest)
    with pytest.raises(IndexCorrupt):
        load(path, data.spec)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
