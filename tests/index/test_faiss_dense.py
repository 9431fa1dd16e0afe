"""What is particular to ``FaissDenseIndex``: IVF training, HNSW tombstones, tuning knobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from screener.index import FaissDenseIndex, IndexSpec, NumpyIndex, load
from tests.contract.synth import clustered_vectors, unique_ids

SPEC = IndexSpec("sscd", 16, "ip")


@pytest.fixture(scope="module", name="vectors")
def _vectors() -> np.ndarray[tuple[int, int], np.dtype[np.float32]]:
    return clustered_vectors(np.random.default_rng(3), 600, SPEC.dim, clusters=12, noise=0.1)


def assert_equal_to_reference(index: FaissDenseIndex, ref: NumpyIndex, queries: np.ndarray) -> None:
    got, want = index.search(queries, k=5), ref.search(queries, k=5)
    for g, w in zip(got.ids, want.ids, strict=True):
        np.testing.assert_array_equal(g, w)


def test_ivf_buffers_exactly_until_train_min(vectors: np.ndarray) -> None:
    ids = unique_ids(np.random.default_rng(0), len(vectors))
    index = FaissDenseIndex(SPEC, "IVF4,Flat", train_min=300, nprobe=4)
    ref = NumpyIndex(SPEC)
    for start in range(0, 250, 50):
        index.add(ids[start : start + 50], vectors[start : start + 50])
        ref.add(ids[start : start + 50], vectors[start : start + 50])
    index.remove(ids[:10])
    ref.remove(ids[:10])
    assert not index.is_trained
    assert_equal_to_reference(index, ref, vectors[:30])
    index.add(ids[250:], vectors[250:])  # crosses train_min: trains on buffer + batch
    ref.add(ids[250:], vectors[250:])
    assert index.is_trained
    assert len(index) == len(ref) == len(ids) - 10
    np.testing.assert_array_equal(index.ids(), ref.ids())
    assert_equal_to_reference(index, ref, vectors[:30])  # nprobe == nlist: exhaustive


def test_ivf_trains_on_a_large_first_batch(vectors: np.ndarray) -> None:
    index = FaissDenseIndex(SPEC, "IVF4,Flat")
    assert index.params["train_min"] == 4 * 39
    index.add(np.arange(len(vectors)), vectors)
    assert index.is_trained
    assert len(index) == len(vectors)


def test_ivf_pq_needs_more_training_data(vectors: np.ndarray) -> None:
    assert FaissDenseIndex(SPEC, "IVF4,PQ4").params["train_min"] == 39 * 256
    with pytest.raises(ValueError, match="train_min must be >= 256"):
        FaissDenseIndex(SPEC, "IVF4,PQ4", train_min=100)
    index = FaissDenseIndex(SPEC, "IVF4,PQ4", train_min=256, nprobe=4)
    index.add(np.arange(len(vectors)), vectors)
    assert index.is_trained
    top = index.search(vectors[:50], k=1).ids
    assert np.mean([t[0] == i for i, t in enumerate(top)]) > 0.5


def test_ivf_untrained_state_survives_save_and_load(
    vectors: np.ndarray,
    tmp_path: Path,
) -> None:
    index = FaissDenseIndex(SPEC, "IVF4,Flat", train_min=200, nprobe=2)
    index.add(np.arange(100), vectors[:100])
    manifest = index.save(tmp_path / "ivf.idx", high_water=100)
    assert manifest.extra["trained"] is False
    loaded, _ = load(tmp_path / "ivf.idx", SPEC)
    assert isinstance(loaded, FaissDenseIndex)
    assert not loaded.is_trained
    assert loaded.nprobe == 2
    loaded.add(np.arange(100, 300), vectors[100:300])
    assert loaded.is_trained
    assert len(loaded) == 300


def test_tuning_knobs() -> None:
    hnsw = FaissDenseIndex(SPEC, "HNSW16")
    assert hnsw.ef_search == 64
    hnsw.ef_search = 200
    assert hnsw.ef_search == 200
    assert hnsw.params == {"compact_min": 1024, "ef_construction": 80, "ef_search": 200}
    with pytest.raises(ValueError, match="ef_search"):
        hnsw.ef_search = 0
    with pytest.raises(ValueError, match="nprobe applies to IVF"):
        hnsw.nprobe = 3
    ivf = FaissDenseIndex(SPEC, "IVF8,Flat")
    ivf.nprobe = 3
    assert ivf.nprobe == 3
    with pytest.raises(ValueError, match="ef_search applies to HNSW"):
        ivf.ef_search = 3
    assert FaissDenseIndex(SPEC).params == {}


def test_hnsw_tombstones_then_compaction(vectors: np.ndarray) -> None:
    index = FaissDenseIndex(SPEC, "HNSW16", compact_min=0)
    ref = NumpyIndex(SPEC)
    ids = np.arange(100)
    index.add(ids, vectors[:100])
    ref.add(ids, vectors[:100])
    index.add(ids[:5], vectors[100:105])  # re-adds leave the old rows as tombstones
    ref.add(ids[:5], vectors[100:105])
    assert index.tombstones == 5
    assert index.remove(ids[5:40]) == 35
    ref.remove(ids[5:40])
    assert index.tombstones == 40
    assert len(index) == 65
    assert_equal_to_reference(index, ref, vectors[:40])
    index.remove(ids[40:75])  # now 75 dead > 30 live: rebuilt
    ref.remove(ids[40:75])
    assert index.tombstones == 0
    assert len(index) == 30
    np.testing.assert_array_equal(index.ids(), ref.ids())
    assert_equal_to_reference(index, ref, vectors[:105])
    index.add(ids[:3], vectors[200:203])
    ref.add(ids[:3], vectors[200:203])
    assert_equal_to_reference(index, ref, vectors[200:203])


def test_hnsw_tombstones_survive_save_and_load(
    vectors: np.ndarray,
    tmp_path: Path,
) -> None:
    index = FaissDenseIndex(SPEC, "HNSW16", ef_search=32)
    index.add(np.arange(200), vectors[:200])
    index.remove(np.arange(0, 200, 2))
    manifest = index.save(tmp_path / "h.idx", high_water=5)
    assert manifest.extra["tombstones"] == 100
    loaded, _ = load(tmp_path / "h.idx", SPEC)
    assert isinstance(loaded, FaissDenseIndex)
    assert loaded.tombstones == 100
    assert loaded.ef_search == 32
    hits = np.concatenate(loaded.search(vectors[:50], k=10).ids)
    assert not np.isin(hits, np.arange(0, 200, 2)).any()
    loaded.compact()
    assert loaded.tombstones == 0
    np.testing.assert_array_equal(loaded.ids(), np.arange(1, 200, 2))


def test_radius_is_inclusive() -> None:
    index = FaissDenseIndex(SPEC)
    unit = np.eye(SPEC.dim, dtype=np.float32)
    index.add(np.arange(SPEC.dim), unit)
    got = index.search(unit[:1] * np.float32(0.5), radius=0.5)
    assert got.ids[0].tolist() == [0]
    assert got.scores[0].tolist() == [0.5]
    assert index.search(unit[:1] * np.float32(0.5), radius=0.5000001).ids[0].size == 0
