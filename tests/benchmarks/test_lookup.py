"""The lookup benchmark: its JSON and plots at a tiny size, and its synthetic data.

Speeds are never asserted here (the benchmark checks its own targets and prints PASS or
FAIL); only structure, exactness and the shape of the data are.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from screener.bench import lookup
from screener.index import IndexSpec, MilvusIndex, create
from tests.milvus import MilvusTestServer

SIZE = 2000


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("lookup")
    cfg = lookup.quick_config(sizes=(SIZE,), queries=40, seed=3, out=out, command="test")
    payload = lookup.run(cfg)
    return payload, out


def _settings(entry: dict[str, Any]) -> list[dict[str, Any]]:
    assert entry["status"] == "ok", entry
    settings: list[dict[str, Any]] = entry["settings"]
    assert settings
    return settings


def test_json_has_the_expected_structure(result: tuple[dict[str, Any], Path]) -> None:
    payload, out = result
    on_disk = json.loads((out / "lookup.json").read_text())
    assert on_disk["benchmark"] == "lookup"
    assert on_disk["command"] == "test"
    for key in ("machine", "config", "budgets", "sizes", "targets", "recommended"):
        assert key in on_disk
    assert on_disk["machine"]["libraries"]["faiss-cpu"]
    assert on_disk["config"]["seed"] == 3
    size = on_disk["sizes"][str(SIZE)]
    dense = size["dense"]["structures"]
    nlist = size["dense"]["nlist"]
    assert set(dense) == {"Flat", "HNSW32", f"IVF{nlist},Flat", f"IVF{nlist},SQ8"}
    assert set(size["binary"]["structures"]) == {"BFlat", "BMIH8", "BMIH16", "BMIH32"}
    for entry in [*dense.values(), *size["binary"]["structures"].values()]:
        assert entry["build"]["complete"]
        assert entry["memory"]["bytes_per_ref"] > 0
        assert "chosen" in entry
        for s in _settings(entry):
            assert 0 < s["latency"]["p50_ms"] <= s["latency"]["p99_ms"]
            assert s["latency"]["n"] >= 5
            assert s["throughput"]["qps"] > 0
            assert s["vs_baseline"]["speedup_p50"] > 0
    hnsw = _settings(dense["HNSW32"])
    assert [s["value"] for s in hnsw] == [16, 64]
    assert all(s["param"] == "ef_search" for s in hnsw)
    assert {s["param"] for s in _settings(dense[f"IVF{nlist},Flat"])} == {"nprobe"}
    assert {t["result"] for t in on_disk["targets"]} <= {"PASS", "FAIL"}
    assert len(on_disk["targets"]) == 7
    rec = on_disk["recommended"][str(SIZE)]
    assert rec["dense"]["structure"] in dense
    assert rec["binary"]["structure"] in size["binary"]["structures"]
    assert on_disk["choose_structure"]["current_defaults"]["dense_approx"]
    assert payload["targets"] == on_disk["targets"]


def test_exact_structures_have_full_recall(result: tuple[dict[str, Any], Path]) -> None:
    size = result[0]["sizes"][str(SIZE)]
    (flat,) = _settings(size["dense"]["structures"]["Flat"])
    for group in ("near", "fresh", "all"):
        assert flat["recall"][group]["at1"] == 1.0
        assert flat["recall"][group]["at10"] == 1.0
    (bflat,) = _settings(size["binary"]["structures"]["BFlat"])
    assert bflat["recall"]["all"]["radius"] == 1.0
    assert bflat["recall"]["all"]["false_answers"] == 0


def test_multi_hash_is_exact_at_radius_31(result: tuple[dict[str, Any], Path]) -> None:
    size = result[0]["sizes"][str(SIZE)]
    for name in ("BMIH8", "BMIH16", "BMIH32"):
        (s,) = _settings(size["binary"]["structures"][name])
        recall = s["recall"]["all"]
        assert recall["true_neighbours"] > 0
        assert recall["radius"] == 1.0, name
        assert recall["false_answers"] == 0
        assert recall["queries_complete"] == recall["queries_with_neighbours"]


def test_memory_is_measured_against_raw_bytes(result: tuple[dict[str, Any], Path]) -> None:
    size = result[0]["sizes"][str(SIZE)]
    flat = size["dense"]["structures"]["Flat"]["memory"]
    assert 1.0 <= flat["ratio_to_raw"] < 1.1  # float32 rows plus an int64 id each
    nlist = size["dense"]["nlist"]
    sq8 = size["dense"]["structures"][f"IVF{nlist},SQ8"]["memory"]
    assert sq8["ratio_to_raw"] < 0.5  # one byte per dimension instead of four
    bflat = size["binary"]["structures"]["BFlat"]["memory"]
    assert bflat["bytes_per_ref"] >= 32


def test_plots_exist(result: tuple[dict[str, Any], Path]) -> None:
    payload, out = result
    assert payload["plots"] == ["lookup_latency.png", "lookup_tradeoff.png"]
    for name in payload["plots"]:
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG")
        assert 1000 < len(data) < 300_000


def test_command_runs_under_typer(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(lookup.command)
    res = CliRunner().invoke(
        app,
        [
            "--sizes",
            "1000",
            "--queries",
            "20",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
            "--quick",
            "--dense",
            "Flat;HNSW16",
            "--binary",
            "BFlat;BMIH16",
        ],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads((tmp_path / "lookup.json").read_text())
    assert payload["command"].startswith("python -m screener.bench.lookup --sizes 1000")
    assert "--quick" in payload["command"]
    assert set(payload["sizes"]["1000"]["dense"]["structures"]) == {"Flat", "HNSW16"}
    assert "PASS" in res.output or "FAIL" in res.output


@pytest.mark.slow
def test_milvus_is_measured_against_the_faiss_baseline(milvus_uri: str, tmp_path: Path) -> None:
    """Milvus structures at a tiny size on the session's server (``--milvus-uri``): the
    exact one finds what the exact search finds, and every speed is a ratio to faiss."""
    cfg = lookup.quick_config(
        sizes=(1000,),
        queries=20,
        seed=4,
        out=tmp_path,
        command="test",
        dense=("Flat",),
        binary=("BFlat",),
        ef_search=(32,),
        milvus=("HNSW", "BIN_FLAT"),  # each collection costs seconds: one dense, one binary
        milvus_uri=milvus_uri,
        latency_budget_s=0.1,
        throughput_budget_s=0.3,
    )
    payload = lookup.run(cfg)
    section = payload["sizes"]["1000"]["milvus"]
    assert section["uri"] == milvus_uri and not section["started_for_run"]
    dense = section["dense"]["structures"]
    assert set(dense) == {"milvus:HNSW"}
    (hnsw,) = _settings(dense["milvus:HNSW"])
    assert hnsw["param"] == "ef_search" and hnsw["value"] == 32
    assert hnsw["recall"]["near"]["at1"] >= 0.9  # 1,000 references: HNSW finds the copies
    (bin_flat,) = _settings(section["binary"]["structures"]["milvus:BIN_FLAT"])
    assert bin_flat["recall"]["all"]["radius"] == 1.0
    assert bin_flat["recall"]["all"]["false_answers"] == 0
    for entry in [*dense.values(), section["binary"]["structures"]["milvus:BIN_FLAT"]]:
        assert entry["build"]["complete"] and entry["build"]["rows"] == 1000
        assert entry["vs_baseline"]["build_seconds_ratio"] > 0
        assert "not measurable" in entry["memory"]["measured"]  # not a server it started
        for s in entry["settings"]:
            assert 0 < s["latency"]["p50_ms"] <= s["latency"]["p95_ms"]
            assert s["vs_baseline"]["speedup_p50"] > 0 and s["vs_baseline"]["slowdown_p95"] > 0
    assert "lookup_milvus.png" in payload["plots"]
    assert (tmp_path / "lookup_milvus.png").read_bytes().startswith(b"\x89PNG")
    from pymilvus import connections, utility

    connections.connect("bench-check", uri=milvus_uri)
    try:  # every collection the run made was dropped
        assert not [c for c in utility.list_collections(using="bench-check") if "bench_" in c]
    finally:
        connections.disconnect("bench-check")
    lookup.print_report(payload)


@pytest.mark.slow
def test_milvus_memory_is_read_from_the_servers_storage(milvus: MilvusTestServer) -> None:
    codes = np.random.default_rng(2).integers(0, 256, (500, 32), dtype=np.uint8)
    index = create(
        IndexSpec("storage", 256, "hamming"),
        "milvus:BIN_FLAT",
        uri=milvus.uri,
        collection=f"storage_{uuid.uuid4().hex[:8]}",
    )
    assert isinstance(index, MilvusIndex)
    try:
        index.add(np.arange(500, dtype=np.int64), codes)
        index.flush()
        storage = lookup.milvus_storage(milvus, index)
    finally:
        index.drop()
    assert storage["segments"] == 1
    assert storage["index_file_bytes"] == storage["segments_indexed"] == 0  # BIN_FLAT: none
    assert 500 * 32 <= storage["loaded_bytes"] == storage["binlog_bytes"] < 500 * 32 * 4


def test_unknown_milvus_structure_is_refused(tmp_path: Path) -> None:
    cfg = lookup.quick_config(out=tmp_path, milvus=("DISKANN",))
    with pytest.raises(ValueError, match="unknown Milvus structure"):
        lookup.run(cfg)


# -- the synthetic data ------------------------------------------------------------------------


def test_dense_data_is_clustered_like_embeddings() -> None:
    data = lookup.dense_dataset(4000, 300, seed=5)
    assert data.refs.shape == (4000, lookup.DIM)
    assert data.refs.dtype == np.float32
    assert np.allclose(np.linalg.norm(data.refs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(data.queries, axis=1), 1.0, atol=1e-4)
    assert 100 <= data.near.sum() <= 200
    assert np.all(data.source[~data.near] == -1)
    ids, scores = lookup.exact_dense_topk(data.refs, data.queries, 10)
    near_top1 = scores[data.near, 0]
    fresh_top1 = scores[~data.near, 0]
    # near-duplicates: high cosine with their source, which is their nearest neighbour
    assert near_top1.min() > 0.75
    assert 0.8 < np.median(near_top1) < 0.98
    assert np.mean(ids[data.near, 0] == data.source[data.near]) > 0.95
    # fresh queries: clearly lower, but far above independent Gaussians (~0.15 at 512-d)
    assert 0.3 < np.median(fresh_top1) < 0.7
    assert np.median(near_top1) - np.median(fresh_top1) > 0.2
    # unrelated pairs are nearly orthogonal
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4000, (2, 1000))
    assert abs(float(np.mean(np.sum(data.refs[a] * data.refs[b], axis=1)))) < 0.1


def test_dense_data_is_seeded() -> None:
    one = lookup.dense_dataset(1500, 50, seed=7)
    two = lookup.dense_dataset(1500, 50, seed=7)
    other = lookup.dense_dataset(1500, 50, seed=8)
    assert np.array_equal(one.refs, two.refs)
    assert np.array_equal(one.queries, two.queries)
    assert np.array_equal(one.near, two.near)
    assert np.array_equal(one.source, two.source)
    assert not np.array_equal(one.refs, other.refs)


def test_binary_data_is_clustered_and_seeded() -> None:
    data = lookup.binary_dataset(3000, 200, seed=5)
    again = lookup.binary_dataset(3000, 200, seed=5)
    assert data.refs.shape == (3000, 32)
    assert data.refs.dtype == np.uint8
    assert np.array_equal(data.refs, again.refs)
    assert np.array_equal(data.queries, again.queries)
    assert not np.array_equal(data.refs, lookup.binary_dataset(3000, 200, seed=6).refs)
    within, nearest = lookup.exact_hamming_within(data.refs, data.queries, lookup.RADIUS)
    for i in np.flatnonzero(data.near).tolist():
        assert 0 <= data.flips[i] <= lookup.RADIUS
        assert data.source[i] in within[i]  # a near-duplicate finds its source
        assert nearest[i] <= data.flips[i]
    # codes come in families: members of one family are far closer than 128 bits apart
    bits = np.unpackbits(data.refs, axis=1).astype(np.int64)
    dist = (bits[:300, None, :] != bits[None, :300, :]).sum(axis=2)
    np.fill_diagonal(dist, 256)
    assert np.median(dist.min(axis=1)) < 100
    # fresh queries rarely have a neighbour within the radius
    assert np.median(nearest[~data.near]) > lookup.RADIUS


def test_exact_answers_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    refs = lookup.dense_dataset(700, 10, seed=2).refs
    noise = 0.01 * rng.standard_normal((15, lookup.DIM))
    queries = (refs[rng.integers(0, 700, 15)] + noise).astype(np.float32)
    ids, scores = lookup.exact_dense_topk(refs, queries, 5, chunk=128)
    full = queries @ refs.T
    assert np.array_equal(ids, np.argsort(-full, axis=1)[:, :5])
    assert np.allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :5], atol=1e-5)

    codes = lookup.binary_dataset(500, 10, seed=2)
    within, nearest = lookup.exact_hamming_within(codes.refs, codes.queries, 40, chunk=64)
    bits_r = np.unpackbits(codes.refs, axis=1).astype(np.int64)
    bits_q = np.unpackbits(codes.queries, axis=1).astype(np.int64)
    dist = (bits_q[:, None, :] != bits_r[None, :, :]).sum(axis=2)
    for i in range(len(codes.queries)):
        assert np.array_equal(within[i], np.flatnonzero(dist[i] <= 40))
    assert np.array_equal(nearest, dist.min(axis=1))


def test_recall_is_judged_by_exact_scores() -> None:
    refs = np.eye(4, dtype=np.float32)
    queries = np.array([[1.0, 0.5, 0.2, 0.0]], dtype=np.float32)
    truth = np.array([[1.0, 0.5]], dtype=np.float32)
    r1, r2 = lookup.dense_recall([np.array([0, 1])], refs, queries, truth, 2)
    assert r1[0] == 1.0 and r2[0] == 1.0
    r1, r2 = lookup.dense_recall([np.array([1, 2])], refs, queries, truth, 2)
    assert r1[0] == 0.0 and r2[0] == 0.5
