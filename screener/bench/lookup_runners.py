"""Building one faiss index and measuring its latency, throughput, memory and recall."""

from __future__ import annotations

import gc
import importlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.bench.common import percentile_ms, stopwatch
from screener.bench.lookup_data import (
    BITS,
    DIM,
    F32,
    F64,
    I64,
    RADIUS,
    BinaryData,
    Bools,
    Config,
    DenseData,
    K,
    _log,
)
from screener.index import FaissDenseIndex, IndexSpec, VectorIndex, create


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _faiss() -> Any:
    return importlib.import_module("faiss")


def _faiss_threads() -> int | None:
    try:
        return int(_faiss().omp_get_max_threads())
    except (ImportError, AttributeError):
        return None


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """faiss's OpenMP threads set to ``n`` inside the block (unchanged when ``n`` is None)."""
    before = _faiss_threads()
    if n is None or before is None:
        yield
        return
    _faiss().omp_set_num_threads(n)
    try:
        yield
    finally:
        _faiss().omp_set_num_threads(before)


# -- measuring one index ----------------------------------------------------------------------


@dataclass
class Built:
    index: VectorIndex | None
    seconds: float
    rows: int
    complete: bool
    train_seconds: float | None = None
    rss_delta: int = 0


def _build(
    index: VectorIndex,
    vectors: npt.NDArray[Any],
    *,
    label: str,
    first: int,
    chunk: int,
    max_s: float,
) -> Built:
    """Add ``vectors`` (ids 0..n-1) in chunks, logging progress; stop past ``max_s``."""
    n = len(vectors)
    gc.collect()
    rss0 = _rss_bytes()
    done = 0
    train_s: float | None = None
    start = time.perf_counter()
    next_log = start + 15.0
    while done < n:
        size = first if done == 0 and first > 0 else chunk
        stop = min(n, done + size)
        with stopwatch() as t:
            index.add(np.arange(done, stop, dtype=np.int64), vectors[done:stop])
        if done == 0 and first > 0:
            train_s = t[0]
        done = stop
        now = time.perf_counter()
        elapsed = now - start
        if done < n and now >= next_log:
            eta = elapsed / done * (n - done)
            _log(f"  {label}: {done:,}/{n:,} rows in {elapsed:.0f}s (about {eta:.0f}s to go)")
            next_log = now + 15.0
        if done < n and elapsed > max_s:
            _log(f"  {label}: gave up after {elapsed:.0f}s at {done:,}/{n:,} rows")
            return Built(None, elapsed, done, False, train_s)
    seconds = time.perf_counter() - start
    return Built(index, seconds, n, True, train_s, _rss_bytes() - rss0)


def _saved_bytes(index: VectorIndex, n: int) -> int:
    """Size of the index as the service saves it (faiss bytes plus label arrays, + manifest)."""
    with tempfile.TemporaryDirectory(prefix="lookup-bench-") as tmp:
        path = Path(tmp) / "index.bin"
        index.save(path, high_water=n)
        return sum(p.stat().st_size for p in Path(tmp).iterdir())


def _memory(index: VectorIndex, built: Built, n: int, raw_bytes_per_ref: int) -> dict[str, float]:
    """What the index takes per reference, saved and in this process, against the raw vector."""
    saved = _saved_bytes(index, n)
    return {
        "saved_bytes": saved,
        "bytes_per_ref": saved / n,
        "ratio_to_raw": saved / n / raw_bytes_per_ref,
        "rss_delta_bytes_per_ref": built.rss_delta / n,
    }


def _warm_up(search_one: Callable[[int], object], order: Sequence[int], cfg: Config) -> None:
    deadline = time.perf_counter() + cfg.warmup_s
    with _threads(cfg.single_query_threads):
        for count, i in enumerate(order):
            search_one(i)
            if count >= 2 and time.perf_counter() > deadline:
                break


def _single_latencies(
    search_one: Callable[[int], object],
    order: Sequence[int],
    cfg: Config,
    *,
    threads: int | None,
    budget_s: float | None = None,
    min_n: int | None = None,
) -> tuple[list[float], list[int]]:
    """One query at a time, in ``order``, until all are done or the time budget is spent."""
    budget = cfg.latency_budget_s if budget_s is None else budget_s
    least = cfg.min_latency_queries if min_n is None else min_n
    gc.collect()
    samples: list[float] = []
    used: list[int] = []
    with _threads(threads):
        deadline = time.perf_counter() + budget
        for i in order:
            with stopwatch() as t:
                search_one(i)
            samples.append(t[0])
            used.append(i)
            if len(samples) >= least and time.perf_counter() > deadline:
                break
    return samples, used


def _single_query(
    search_one: Callable[[int], object],
    order: Sequence[int],
    cfg: Config,
    near: Bools,
    baseline: bool,
) -> dict[str, Any]:
    """Latency summary one query at a time (faiss on ``cfg.single_query_threads`` threads).

    For a baseline, a short second loop with faiss's default threads records what OpenMP
    costs a single query on this (shared) machine.
    """
    samples, used = _single_latencies(search_one, order, cfg, threads=cfg.single_query_threads)
    summary = _latency_summary(samples, used, near)
    summary["faiss_threads"] = cfg.single_query_threads or _faiss_threads()
    if baseline and cfg.single_query_threads is not None:
        budget = max(0.2, cfg.latency_budget_s / 4)
        more, more_used = _single_latencies(
            search_one, order, cfg, threads=None, budget_s=budget, min_n=5
        )
        summary["default_threads"] = {
            "faiss_threads": _faiss_threads(),
            **_latency_summary(more, more_used, near),
        }
    return summary


def _latency_summary(samples: list[float], used: list[int], near: Bools) -> dict[str, Any]:
    kinds = near[np.asarray(used, dtype=np.int64)]
    out: dict[str, Any] = {
        "n": len(samples),
        "p50_ms": percentile_ms(samples, 50),
        "p95_ms": percentile_ms(samples, 95),
        "p99_ms": percentile_ms(samples, 99),
        "mean_ms": float(np.mean(samples) * 1000.0),
    }
    for name, mask in (("near", kinds), ("fresh", ~kinds)):
        part = [s for s, m in zip(samples, mask.tolist(), strict=True) if m]
        out[name] = {
            "n": len(part),
            "p50_ms": percentile_ms(part, 50),
            "p99_ms": percentile_ms(part, 99),
        }
    return out


def _batched(
    search_batch: Callable[[slice], list[I64]], n_queries: int, cfg: Config
) -> tuple[list[I64], dict[str, Any]]:
    """Queries in batches of ``cfg.batch``: ids per query answered, and queries per second."""
    search_batch(slice(0, min(32, n_queries)))  # warm-up
    gc.collect()
    answers: list[I64] = []
    elapsed = 0.0
    for start in range(0, n_queries, cfg.batch):
        with stopwatch() as t:
            answers.extend(search_batch(slice(start, min(n_queries, start + cfg.batch))))
        elapsed += t[0]
        if elapsed > cfg.throughput_budget_s:
            break
    return answers, {
        "batch": cfg.batch,
        "queries": len(answers),
        "seconds": elapsed,
        "qps": len(answers) / elapsed if elapsed > 0 else float("nan"),
    }


# -- dense ------------------------------------------------------------------------------------

#: Slack when comparing a returned neighbour's exact score with the k-th exact score: two
#: references within 1e-5 of each other are equally good answers, and numpy and faiss may
#: round the same product differently in the last bits.
_SCORE_SLACK = 1e-5


def dense_recall(
    answers: Sequence[I64], refs: F32, queries: F32, truth_scores: F32, k: int
) -> tuple[F64, F64]:
    """Per query: recall@1 (0/1) and recall@k, judged by the exact scores of what came back."""
    r1 = np.zeros(len(answers))
    rk = np.zeros(len(answers))
    kk = min(k, truth_scores.shape[1])
    for i, ids in enumerate(answers):
        if len(ids) == 0:
            continue
        got = refs[ids[:kk]] @ queries[i]
        r1[i] = float(got[0] >= truth_scores[i, 0] - _SCORE_SLACK)
        rk[i] = min(kk, int(np.sum(got >= truth_scores[i, kk - 1] - _SCORE_SLACK))) / kk
    return r1, rk


def _recall_groups(values: dict[str, F64], near: Bools) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for group, mask in (("near", near), ("fresh", ~near), ("all", np.ones_like(near))):
        out[group] = {
            name: float(v[mask].mean()) if mask.any() else float("nan")
            for name, v in values.items()
        }
        out[group]["n"] = int(mask.sum())
    return out


def _dense_family(structure: str) -> str:
    if structure == "Flat":
        return "flat"
    return "hnsw" if structure.startswith("HNSW") else "ivf"


def _dense_params(structure: str, n: int, cfg: Config) -> tuple[dict[str, int], int]:
    """Creation parameters and the size of the first add (IVF trains on the first add)."""
    family = _dense_family(structure)
    if family == "hnsw":
        return {"ef_construction": cfg.ef_construction}, 0
    if family == "ivf":
        nlist = int(structure.split(",", maxsplit=1)[0].removeprefix("IVF"))
        train = max(nlist, min(n, cfg.ivf_train_per_list * nlist))
        return {"train_min": train}, train
    return {}, 0


def _bench_dense_structure(
    structure: str, data: DenseData, truth: F32, cfg: Config, order: Sequence[int]
) -> dict[str, Any]:
    n = len(data.refs)
    spec = IndexSpec("bench-dense", DIM, "ip")
    params, first = _dense_params(structure, n, cfg)
    family = _dense_family(structure)
    result: dict[str, Any] = {"structure": structure, "family": family, "params": params}
    if family == "ivf" and n < params["train_min"]:
        return {**result, "status": "skipped", "reason": "fewer references than lists"}
    _log(f"dense N={n:,}: building {structure} {params or ''}")
    # Added in chunks, as a registry grows (and to report progress). This matters for HNSW:
    # faiss builds a somewhat worse graph from many adds than from one (see the README).
    chunk = max(10_000, n // 20)
    built = _build(
        create(spec, structure, **params),
        data.refs,
        label=structure,
        first=first,
        chunk=chunk,
        max_s=cfg.max_build_s,
    )
    result["build"] = {
        "seconds": built.seconds,
        "train_seconds": built.train_seconds,
        "first_add": first or chunk,
        "add_chunk": chunk,
        "rows": built.rows,
        "complete": built.complete,
    }
    if not built.complete or built.index is None:
        result["status"] = "build_timeout"
        result["build"]["extrapolated_seconds"] = built.seconds * n / max(1, built.rows)
        return result
    index = built.index
    _log(f"  built {structure} in {built.seconds:.1f}s; saving to measure its size")
    result["memory"] = _memory(index, built, n, DIM * 4)
    knob = {"hnsw": "ef_search", "ivf": "nprobe"}.get(family)
    values: list[int | None] = [None]
    if knob == "ef_search":
        values = list(cfg.ef_search)
    elif knob == "nprobe":
        nlist = int(structure.split(",", maxsplit=1)[0].removeprefix("IVF"))
        values = [v for v in cfg.nprobe if v <= nlist] or [nlist]
    settings = []
    for value in values:
        if value is not None:
            assert isinstance(index, FaissDenseIndex) and knob is not None
            setattr(index, knob, value)
        settings.append(_measure_dense(index, data, truth, cfg, order, knob, value))
        s = settings[-1]
        _log(
            f"  {structure} {knob or ''}{'=' if knob else ''}{value if value is not None else ''}"
            f": p50 {s['latency']['p50_ms']:.2f} ms, p99 {s['latency']['p99_ms']:.2f} ms, "
            f"{s['throughput']['qps']:.0f} q/s, recall@1 near {s['recall']['near']['at1']:.4f} "
            f"fresh {s['recall']['fresh']['at1']:.4f}"
        )
    result["settings"] = settings
    result["status"] = "ok"
    return result


def _timed_searches(
    index: VectorIndex,
    queries: npt.NDArray[Any],
    near: Bools,
    cfg: Config,
    order: Sequence[int],
    baseline: bool,
    **how: int,
) -> tuple[list[I64], dict[str, Any], dict[str, Any]]:
    """Warm up, then time the queries in batches and one at a time (``how``: ``k`` or
    ``radius``): the answers of the batched run, its throughput, the single-query latency."""

    def one(i: int) -> object:
        return index.search(queries[i : i + 1], **how)

    def batch(s: slice) -> list[I64]:
        return index.search(queries[s], **how).ids

    _warm_up(one, order, cfg)
    answers, throughput = _batched(batch, len(queries), cfg)
    return answers, throughput, _single_query(one, order, cfg, near, baseline=baseline)


def _measure_dense(
    index: VectorIndex,
    data: DenseData,
    truth: F32,
    cfg: Config,
    order: Sequence[int],
    knob: str | None,
    value: int | None,
) -> dict[str, Any]:
    q = data.queries
    answers, throughput, latency = _timed_searches(
        index, q, data.near, cfg, order, knob is None, k=K
    )
    scored = len(answers)
    r1, r10 = dense_recall(answers, data.refs, q[:scored], truth[:scored], K)
    return {
        "param": knob,
        "value": value,
        "latency": latency,
        "throughput": throughput,
        "recall": _recall_groups({"at1": r1, "at10": r10}, data.near[:scored]),
    }


# -- binary -----------------------------------------------------------------------------------


def _bench_binary_structure(
    structure: str, data: BinaryData, truth: list[I64], cfg: Config, order: Sequence[int]
) -> dict[str, Any]:
    n = len(data.refs)
    spec = IndexSpec("bench-binary", BITS, "hamming")
    params: dict[str, int] = {}
    if structure.startswith("BMIH"):
        # Probe with exactly the flips radius 31 needs, never the flat fall-back scan.
        params = {"max_flips": RADIUS // int(structure.removeprefix("BMIH"))}
    result: dict[str, Any] = {"structure": structure, "params": params}
    _log(f"binary N={n:,}: building {structure} {params or ''}")
    chunk = max(10_000, n // 10)
    built = _build(
        create(spec, structure, **params),
        data.refs,
        label=structure,
        first=0,
        chunk=chunk,
        max_s=cfg.max_build_s,
    )
    result["build"] = {
        "seconds": built.seconds,
        "add_chunk": chunk,
        "rows": built.rows,
        "complete": built.complete,
    }
    if not built.complete or built.index is None:
        result["status"] = "build_timeout"
        return result
    index = built.index
    result["memory"] = _memory(index, built, n, BITS // 8)
    setting = _measure_binary(index, data, truth, cfg, order, baseline=structure == "BFlat")
    throughput = setting["throughput"]
    result["settings"] = [setting]
    result["status"] = "ok"
    _log(
        f"  {structure}: built in {built.seconds:.1f}s, p50 {setting['latency']['p50_ms']:.3f} ms,"
        f" p99 {setting['latency']['p99_ms']:.3f} ms, {throughput['qps']:.0f} q/s, "
        f"radius recall {setting['recall']['all']['radius']:.4f}"
    )
    return result


def _measure_binary(
    index: VectorIndex,
    data: BinaryData,
    truth: list[I64],
    cfg: Config,
    order: Sequence[int],
    baseline: bool,
) -> dict[str, Any]:
    answers, throughput, latency = _timed_searches(
        index, data.queries, data.near, cfg, order, baseline, radius=RADIUS
    )
    return {
        "param": None,
        "value": None,
        "latency": latency,
        "throughput": throughput,
        "recall": binary_recall(answers, truth[: len(answers)], data.near[: len(answers)]),
    }


def binary_recall(
    answers: Sequence[I64], truth: Sequence[I64], near: Bools
) -> dict[str, dict[str, float]]:
    """Share of the true radius-31 neighbours found (and of answers that are not true ones)."""
    out: dict[str, dict[str, float]] = {}
    for group, mask in (("near", near), ("fresh", ~near), ("all", np.ones_like(near))):
        true_total = found = extra = complete = with_any = 0
        for i in np.flatnonzero(mask).tolist():
            got, want = answers[i], truth[i]
            hit = int(np.isin(want, got).sum())
            true_total += len(want)
            found += hit
            extra += len(got) - int(np.isin(got, want).sum())
            if len(want):
                with_any += 1
                complete += int(hit == len(want))
        out[group] = {
            "radius": found / true_total if true_total else float("nan"),
            "true_neighbours": true_total,
            "false_answers": extra,
            "queries_with_neighbours": with_any,
            "queries_complete": complete,
            "n": int(mask.sum()),
        }
    return out
