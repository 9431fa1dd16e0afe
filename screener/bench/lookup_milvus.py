"""Measuring Milvus index types against the faiss baseline of the same run."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.bench.common import stopwatch
from screener.bench.lookup_choose import _add_ratios
from screener.bench.lookup_data import (
    BITS,
    DIM,
    F32,
    I64,
    BinaryData,
    Config,
    DenseData,
    _log,
    nlist_for,
)
from screener.bench.lookup_runners import _measure_binary, _measure_dense
from screener.bench.milvus_server import LocalMilvus
from screener.index import IndexSpec, MilvusIndex, create
from screener.index.milvus import connect as connect_milvus

# -- milvus -----------------------------------------------------------------------------------

MILVUS_DENSE = ("FLAT", "HNSW", "IVF_FLAT")
MILVUS_BINARY = ("BIN_FLAT", "BIN_IVF_FLAT")


@dataclass(frozen=True)
class MilvusRun:
    """The Milvus server a run measures: its URI, and the server when the run started it
    (then its memory is read from /proc)."""

    uri: str
    server: LocalMilvus | None


@contextmanager
def milvus_for(cfg: Config) -> Iterator[MilvusRun | None]:
    """None when the run measures no Milvus structure; else the server at
    ``cfg.milvus_uri``, or one started from the ``milvus`` wheel for the run."""
    unknown = [name for name in cfg.milvus if name not in (*MILVUS_DENSE, *MILVUS_BINARY)]
    if unknown:
        raise ValueError(
            f"unknown Milvus structure(s) {unknown}; use {[*MILVUS_DENSE, *MILVUS_BINARY]}"
        )
    if not cfg.milvus:
        yield None
    elif cfg.milvus_uri:
        yield MilvusRun(cfg.milvus_uri, None)
    else:
        _log("starting a Milvus server from the milvus wheel (free ports, temporary folder)")
        with LocalMilvus() as server:
            _log(f"  Milvus at {server.uri} (pid {server.pid})")
            yield MilvusRun(server.uri, server)


def milvus_storage(server: LocalMilvus, index: MilvusIndex) -> dict[str, int]:
    """What a collection occupies in the local storage of a server this run started.

    For each segment it serves, a query node loads the segment's index files and the
    binlogs of its other fields, or every binlog where the segment has no index files (a
    segment too small or too new to be indexed is searched by brute force); the sum is
    the collection's memory in the query node (``loaded_bytes``).
    """
    from pymilvus import Collection, utility

    alias = connect_milvus(server.uri)
    collection_id = Collection(index.collection, using=alias).describe()["collection_id"]
    # Only the segments the query node serves: compacted-away ones stay on disk a while.
    served = {
        str(s.segmentID) for s in utility.get_query_segment_info(index.collection, using=alias)
    }
    data = server.base / "data"
    root = data / "insert_log" / str(collection_id)
    binlogs: dict[str, dict[str, int]] = {}  # segment -> field -> bytes
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if path.is_file() and len(parts) == 4 and parts[1] in served:  # part/segment/field/log
            fields = binlogs.setdefault(parts[1], {})
            fields[parts[2]] = fields.get(parts[2], 0) + path.stat().st_size
    indexed: dict[str, int] = {}
    for path in (data / "index_files").rglob("*"):
        if path.is_file() and path.parent.name in binlogs:
            indexed[path.parent.name] = indexed.get(path.parent.name, 0) + path.stat().st_size
    loaded = 0
    for segment, fields in binlogs.items():
        vectors = max(fields.values())  # vectors outweigh ids and timestamps
        total = sum(fields.values())
        loaded += total - vectors + indexed[segment] if segment in indexed else total
    return {
        "binlog_bytes": sum(sum(f.values()) for f in binlogs.values()),
        "index_file_bytes": sum(indexed.values()),
        "loaded_bytes": loaded,
        "segments": len(binlogs),
        "segments_indexed": len(indexed),
    }


def _milvus_params(structure: str, n: int, cfg: Config) -> tuple[dict[str, int], str | None]:
    """Build parameters, and the search knob swept (HNSW as faiss's HNSW32, IVF as its
    IVF<2*sqrt(N)>)."""
    if structure == "HNSW":
        return {"M": 32, "ef_construction": cfg.ef_construction}, "ef_search"
    if structure in ("IVF_FLAT", "BIN_IVF_FLAT"):
        return {"nlist": nlist_for(n, cfg.ivf_lists_factor)}, "nprobe"
    return {}, None


def _build_milvus(
    structure: str,
    spec: IndexSpec,
    vectors: npt.NDArray[Any],
    params: dict[str, int],
    milvus: MilvusRun,
) -> tuple[MilvusIndex, dict[str, Any], dict[str, Any]]:
    """A fresh collection holding ``vectors`` (ids 0..n-1), flushed and indexed: build
    seconds cover the upserts, the flush and the wait for the index."""
    n = len(vectors)
    raw = spec.dim * 4 if spec.metric == "ip" else spec.dim // 8
    rss0 = milvus.server.rss_bytes() if milvus.server else None
    name = f"bench_{structure.lower()}_{uuid.uuid4().hex[:8]}"
    _log(f"{spec.metric} N={n:,}: building milvus:{structure} {params or ''}")
    with stopwatch() as t:
        made = create(spec, f"milvus:{structure}", uri=milvus.uri, collection=name, **params)
        assert isinstance(made, MilvusIndex)
        index = made
        chunk = max(10_000, n // 10)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            index.add(np.arange(start, stop, dtype=np.int64), vectors[start:stop])
        index.flush()
    count = len(index)
    rss1 = milvus.server.rss_bytes() if milvus.server else None
    build = {"seconds": t[0], "rows": count, "complete": count == n, "add_chunk": chunk}
    memory: dict[str, Any] = {}
    if milvus.server is not None:
        storage = milvus_storage(milvus.server, index)
        memory.update(
            measured="what the query node loads: index files plus the binlogs of the other "
            "fields, or every binlog without index files (the server's local storage)",
            storage=storage,
            bytes_per_ref=storage["loaded_bytes"] / n,
            ratio_to_raw=storage["loaded_bytes"] / n / raw,
        )
        if rss0 is not None and rss1 is not None:
            # All of Milvus runs in the one standalone process; freed memory of an earlier
            # collection is reused lazily, so this is recorded but not used.
            memory["server_rss_delta_bytes"] = rss1 - rss0
    else:
        memory.update(bytes_per_ref=float("nan"), ratio_to_raw=float("nan"))
        memory["measured"] = "not measurable (a server this run did not start)"
    return index, build, memory


def _bench_milvus(
    structure: str,
    n: int,
    cfg: Config,
    milvus: MilvusRun,
    measure: Callable[[MilvusIndex], dict[str, Any]],
    spec: IndexSpec,
    vectors: npt.NDArray[Any],
) -> dict[str, Any]:
    params, knob = _milvus_params(structure, n, cfg)
    result: dict[str, Any] = {"structure": f"milvus:{structure}", "params": params}
    index, result["build"], result["memory"] = _build_milvus(
        structure, spec, vectors, params, milvus
    )
    try:
        values: list[int | None] = [None]
        if knob == "ef_search":
            values = list(cfg.ef_search)
        elif knob == "nprobe":
            values = [v for v in cfg.nprobe if v <= params["nlist"]] or [params["nlist"]]
        settings = []
        for value in values:
            if knob is not None and value is not None:
                index.tune(**{knob: value})
            setting = measure(index)
            setting["latency"].pop("default_threads", None)  # a faiss matter
            setting["param"], setting["value"] = knob, value
            settings.append(setting)
            lat = setting["latency"]
            _log(
                f"  milvus:{structure} {knob or ''}{'=' if knob else ''}"
                f"{value if value is not None else ''}: p50 {lat['p50_ms']:.2f} ms, "
                f"p95 {lat['p95_ms']:.2f} ms, {setting['throughput']['qps']:.0f} q/s"
            )
        result["settings"] = settings
        result["status"] = "ok"
    finally:
        index.drop()
    return result


def _milvus_ratios(
    entries: dict[str, dict[str, Any]], baseline_name: str, baseline: dict[str, Any]
) -> None:
    """Latency and throughput (per setting), build time and memory (per structure) as
    ratios to the faiss baseline measured in the same run."""
    if baseline.get("status") != "ok":
        return
    _add_ratios({baseline_name: baseline, **entries}, baseline_name)
    b = baseline["settings"][0]["latency"]
    for entry in entries.values():
        if entry.get("status") != "ok":
            continue
        for s in entry["settings"]:
            s["vs_baseline"]["slowdown_p95"] = s["latency"]["p95_ms"] / b["p95_ms"]
        entry["vs_baseline"] = {
            "baseline": baseline_name,
            "build_seconds_ratio": entry["build"]["seconds"] / baseline["build"]["seconds"],
            "memory_ratio": entry["memory"]["bytes_per_ref"] / baseline["memory"]["bytes_per_ref"],
        }


def _bench_milvus_size(
    n: int,
    cfg: Config,
    milvus: MilvusRun,
    dense: tuple[DenseData, F32, dict[str, Any]] | None,
    binary: tuple[BinaryData, list[I64], dict[str, Any]] | None,
    order: Sequence[int],
) -> dict[str, Any]:
    out: dict[str, Any] = {"uri": milvus.uri, "started_for_run": milvus.server is not None}

    def family(
        structures: Collection[str],
        spec: IndexSpec,
        vectors: npt.NDArray[Any],
        measure: Callable[[MilvusIndex], dict[str, Any]],
        baseline_name: str,
        baseline: dict[str, Any],
    ) -> dict[str, Any]:
        entries = {
            f"milvus:{structure}": _bench_milvus(structure, n, cfg, milvus, measure, spec, vectors)
            for structure in cfg.milvus
            if structure in structures
        }
        _milvus_ratios(entries, baseline_name, baseline)
        return {"baseline": baseline_name, "structures": entries}

    if dense is not None:
        data, truth, flat = dense
        out["dense"] = family(
            MILVUS_DENSE,
            IndexSpec("bench-dense", DIM, "ip"),
            data.refs,
            lambda index: _measure_dense(index, data, truth, cfg, order, None, None),
            "Flat",
            flat,
        )
    if binary is not None:
        bdata, within, bflat = binary
        out["binary"] = family(
            MILVUS_BINARY,
            IndexSpec("bench-binary", BITS, "hamming"),
            bdata.refs,
            lambda index: _measure_binary(index, bdata, within, cfg, order, baseline=False),
            "BFlat",
            bflat,
        )
    return out
