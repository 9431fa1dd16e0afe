"""``screener bench lookup``: how fast and how exact each index structure is, by size.

Dense 512-d inner-product indexes (``Flat``, ``HNSW<M>``, ``IVF<n>,Flat`` and the compressed
``IVF<n>,SQ8``) and 256-bit binary indexes (``BFlat``, ``BMIH<nhash>``) are built through
the ``index`` package, exactly as the service builds them, over seeded synthetic data that
is clustered like real fingerprints (independent Gaussian vectors make every neighbour
equally far and every approximate structure look bad, so they are never used here).

For each size and structure it reports build time, memory per reference (the size of the
saved index file, which is what the service keeps in memory, and the process RSS growth),
one-query-at-a-time p50/p99 latency after warm-up, batched throughput, and recall against
an exact search done independently in numpy: recall@1 and recall@10 for dense k-NN, the
share of true radius-31 neighbours found for binary. Near-duplicate and fresh queries are
scored separately. Approximate structures are swept over their search knob (``ef_search``,
``nprobe``, ``nhash``) and the cheapest setting reaching recall@1 >= 0.99 on near-duplicates
is reported.

The machine is shared and noisy, so every speed is also reported as a ratio to the exact
flat baseline measured in the same run; the targets of the issue are checked here (PASS or
FAIL with the measured value), never by timed assertions in tests. The recommended
structure per size, and hence the defaults of :func:`index.choose_structure`, come from the
JSON this writes (``benchmarks/results/lookup/lookup.json``).
"""

from __future__ import annotations

import gc
import importlib
import inspect
import math
import os
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer

from benchmarks.common import machine, percentile_ms, stopwatch, write_json
from benchmarks.milvus_server import LocalMilvus
from index import FaissDenseIndex, IndexSpec, MilvusIndex, VectorIndex, choose_structure, create
from index.milvus import connect as connect_milvus

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Bools = npt.NDArray[np.bool_]

DIM = 512
BITS = 256
RADIUS = 31
K = 10
DEFAULT_OUT = Path("benchmarks/results/lookup")

# -- targets of the issue (checked at the largest size run) ------------------------------------

LATENCY_BUDGET_MS = 10.0
RECALL_TARGET = 0.99
DENSE_SPEEDUP_TARGET = 20.0
BINARY_SPEEDUP_TARGET = 1.5
MEMORY_RATIO_TARGET = 1.2

# -- synthetic data ---------------------------------------------------------------------------

#: Rank of each cluster's own noise subspace (the intrinsic dimension around a centre).
NOISE_RANK = 48
#: Energy of the low-rank noise relative to the unit centre, drawn log-uniformly per cluster.
SPREAD = (1.5, 4.0)
#: Energy of the small isotropic noise added to every vector.
ISOTROPIC = 0.08
#: Share of a centre's energy that comes from its super-cluster (cousin clusters are close).
SUPER_SHARE = 0.3
#: Exponent of the power law of cluster sizes (weight of the i-th cluster is i ** -ZIPF).
ZIPF = 0.7
#: Cosine of a near-duplicate query with the stored vector it was made from.
NEAR_COSINE = (0.80, 0.98)
#: Bits flipped to make a member of a binary family from its base code.
FAMILY_FLIPS = (10, 70)


def _log(message: str) -> None:
    print(f"[lookup {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _unit(x: npt.NDArray[Any]) -> F32:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out: F32 = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


def _power_law(n: int) -> F64:
    w = np.arange(1, n + 1, dtype=np.float64) ** -ZIPF
    out: F64 = w / w.sum()
    return out


@dataclass(frozen=True)
class DenseData:
    """Unit reference vectors and queries; ``source[i]`` is the row query i copies, or -1."""

    refs: F32
    queries: F32
    near: Bools
    source: I64
    clusters: int


@dataclass(frozen=True)
class BinaryData:
    """Packed 256-bit reference codes and queries; ``source[i]`` as for :class:`DenseData`."""

    refs: U8
    queries: U8
    near: Bools
    source: I64
    flips: I64
    clusters: int


class _DenseModel:
    """Clusters of unit vectors: centre + low-rank anisotropic noise + small isotropic noise.

    Centres hang off a few super-centres (related subjects are closer than unrelated ones);
    cluster sizes follow a power law (a few popular works, a long tail); each cluster's
    members vary along its own ``NOISE_RANK``-dimensional subspace with decaying scales, so
    the data has a low intrinsic dimension like real embeddings.
    """

    def __init__(self, n: int, dim: int, seed: int) -> None:
        self.dim = dim
        self.seed = seed
        rng = np.random.default_rng([seed, 0xD0])
        self.n_clusters = int(np.clip(n // 200, 8, 5000))
        self.n_super = max(2, round(math.sqrt(self.n_clusters)))
        self.supers = _unit(rng.standard_normal((self.n_super, dim), dtype=np.float32))
        self.weights = _power_law(self.n_clusters)
        # Extra clusters past n_clusters never hold references: fresh queries from new works.
        extra = max(16, self.n_clusters // 4)
        total = self.n_clusters + extra
        self.owner = rng.integers(0, self.n_super, total)
        own = rng.standard_normal((total, dim), dtype=np.float32)
        self.centres = _unit(
            math.sqrt(SUPER_SHARE) * self.supers[self.owner]
            + math.sqrt(1 - SUPER_SHARE) * _unit(own)
        )
        self.spread = np.exp(rng.uniform(math.log(SPREAD[0]), math.log(SPREAD[1]), total))
        profile = np.arange(1, NOISE_RANK + 1, dtype=np.float64) ** -0.5
        self.profile = profile / profile.sum()

    def basis(self, cluster: int) -> F32:
        """The cluster's noise directions (rows of norm ~1), reproducible from the seed."""
        rng = np.random.default_rng([self.seed, 0xB0, cluster])
        out: F32 = rng.standard_normal((NOISE_RANK, self.dim), dtype=np.float32) / np.float32(
            math.sqrt(self.dim)
        )
        return out

    def members(self, cluster: int, m: int, rng: np.random.Generator) -> F32:
        scales = np.sqrt(self.spread[cluster] * self.profile).astype(np.float32)
        z = rng.standard_normal((m, NOISE_RANK), dtype=np.float32) * scales
        iso = rng.standard_normal((m, self.dim), dtype=np.float32) * np.float32(
            math.sqrt(ISOTROPIC / self.dim)
        )
        return _unit(self.centres[cluster] + z @ self.basis(cluster) + iso)


def dense_dataset(
    n: int, n_queries: int, seed: int, *, dim: int = DIM, near_share: float = 0.5
) -> DenseData:
    """``n`` clustered unit references and ``n_queries`` queries (near-duplicate and fresh).

    A near-duplicate is a stored vector moved by a random perturbation, half along its
    cluster's noise subspace and half isotropic, sized so that its cosine with the original
    is uniform in ``NEAR_COSINE`` (like an edited copy under SSCD). A fresh query is a new
    member of an existing cluster (four in five) or of a cluster with no references.
    """
    model = _DenseModel(n, dim, seed)
    rng = np.random.default_rng([seed, 0xD1, n])
    labels = rng.choice(model.n_clusters, size=n, p=model.weights)
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=model.n_clusters)
    refs = np.empty((n, dim), dtype=np.float32)
    start = 0
    for cluster, m in enumerate(counts.tolist()):
        if m:
            refs[order[start : start + m]] = model.members(cluster, m, rng)
            start += m

    qrng = np.random.default_rng([seed, 0xD2, n])
    n_near = round(n_queries * near_share)
    source = np.full(n_queries, -1, dtype=np.int64)
    source[:n_near] = qrng.choice(n, size=n_near, replace=n_near > n)
    queries = np.empty((n_queries, dim), dtype=np.float32)
    for i in range(n_near):
        x = refs[source[i]]
        cluster = int(labels[source[i]])
        target = qrng.uniform(*NEAR_COSINE)
        energy = 1.0 / target**2 - 1.0
        along = _unit(qrng.standard_normal(NOISE_RANK) @ model.basis(cluster))
        across = _unit(qrng.standard_normal(dim))
        delta = math.sqrt(energy / 2) * (along + across)
        queries[i] = _unit(x + delta)
    for i in range(n_near, n_queries):
        if qrng.random() < 0.8:
            cluster = int(qrng.choice(model.n_clusters, p=model.weights))
        else:
            cluster = int(qrng.integers(model.n_clusters, len(model.centres)))
        queries[i] = model.members(cluster, 1, qrng)[0]
    shuffle = qrng.permutation(n_queries)
    near = np.arange(n_queries) < n_near
    return DenseData(refs, queries[shuffle], near[shuffle], source[shuffle], model.n_clusters)


def _flip_exactly(rng: np.random.Generator, codes: U8, flips: I64) -> U8:
    """Each row of ``codes`` with exactly ``flips[i]`` distinct bits flipped."""
    bits = np.unpackbits(codes, axis=1)
    for i, f in enumerate(flips.tolist()):
        where = rng.choice(bits.shape[1], size=f, replace=False)
        bits[i, where] ^= 1
    out: U8 = np.packbits(bits, axis=1)
    return out


def _family_members(rng: np.random.Generator, bases: U8) -> U8:
    """Base codes with each bit flipped with probability f/256, f uniform in FAMILY_FLIPS."""
    m, nbytes = bases.shape
    p = rng.uniform(FAMILY_FLIPS[0], FAMILY_FLIPS[1], m) / (8 * nbytes)
    mask = rng.random((m, 8 * nbytes), dtype=np.float32) < p[:, None]
    out: U8 = bases ^ np.packbits(mask, axis=1)
    return out


def binary_dataset(
    n: int, n_queries: int, seed: int, *, bits: int = BITS, near_share: float = 0.5
) -> BinaryData:
    """``n`` codes in families (PDQ hashes of related images) and near-duplicate/fresh queries.

    Families have power-law sizes; a member is its family's random base code with a few
    dozen bits flipped (``FAMILY_FLIPS``). A near-duplicate query is a stored code with 0 to
    31 bits flipped; a fresh one is a uniformly random code or a new member of a family.
    """
    rng = np.random.default_rng([seed, 0xB1, n])
    nbytes = bits // 8
    n_clusters = int(np.clip(n // 50, 4, 50_000))
    bases = rng.integers(0, 256, (n_clusters, nbytes), dtype=np.uint8)
    labels = rng.choice(n_clusters, size=n, p=_power_law(n_clusters))
    refs = np.empty((n, nbytes), dtype=np.uint8)
    chunk = 65_536
    for start in range(0, n, chunk):
        refs[start : start + chunk] = _family_members(rng, bases[labels[start : start + chunk]])

    qrng = np.random.default_rng([seed, 0xB2, n])
    n_near = round(n_queries * near_share)
    source = np.full(n_queries, -1, dtype=np.int64)
    source[:n_near] = qrng.choice(n, size=n_near, replace=n_near > n)
    flips = np.full(n_queries, -1, dtype=np.int64)
    flips[:n_near] = qrng.integers(0, RADIUS + 1, n_near)
    near_q = _flip_exactly(qrng, refs[source[:n_near]], flips[:n_near])
    n_fresh = n_queries - n_near
    n_random = n_fresh // 2
    random_q = qrng.integers(0, 256, (n_random, nbytes), dtype=np.uint8)
    family_q = _family_members(qrng, bases[qrng.integers(0, n_clusters, n_fresh - n_random)])
    queries = np.concatenate([near_q, random_q, family_q]).astype(np.uint8)
    shuffle = qrng.permutation(n_queries)
    near = np.arange(n_queries) < n_near
    return BinaryData(
        refs, queries[shuffle], near[shuffle], source[shuffle], flips[shuffle], n_clusters
    )


# -- exact answers, computed without faiss ----------------------------------------------------


def exact_dense_topk(refs: F32, queries: F32, k: int, chunk: int = 65_536) -> tuple[I64, F32]:
    """The exact top-k rows by inner product (numpy, blocked over the references)."""
    nq = len(queries)
    k = min(k, len(refs))
    best_ids = np.zeros((nq, 0), dtype=np.int64)
    best_scores = np.zeros((nq, 0), dtype=np.float32)
    for start in range(0, len(refs), chunk):
        scores = queries @ refs[start : start + chunk].T
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        ids = np.concatenate([best_ids, part + start], axis=1)
        sc = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        keep = np.argsort(-sc, axis=1, kind="stable")[:, :k]
        best_ids = np.take_along_axis(ids, keep, axis=1)
        best_scores = np.take_along_axis(sc, keep, axis=1)
    return best_ids, best_scores


def exact_hamming_within(
    refs: U8, queries: U8, radius: int, chunk: int = 65_536
) -> tuple[list[I64], I64]:
    """Every row within ``radius`` bits of each query (sorted), and each query's nearest distance.

    Hamming distance as |a| + |b| - 2 a.b over 0/1 float32 vectors: a BLAS product, exact
    since every term is a small integer.
    """
    qbits = np.unpackbits(queries, axis=1).astype(np.float32)
    qpop = qbits.sum(axis=1)
    hit_rows: list[I64] = [np.empty(0, np.int64)]
    hit_cols: list[I64] = [np.empty(0, np.int64)]
    nearest = np.full(len(queries), 10**6, dtype=np.int64)
    for start in range(0, len(refs), chunk):
        rbits = np.unpackbits(refs[start : start + chunk], axis=1).astype(np.float32)
        dist = qpop[:, None] + rbits.sum(axis=1)[None, :] - 2 * (qbits @ rbits.T)
        dist_i = np.rint(dist).astype(np.int64)
        nearest = np.minimum(nearest, dist_i.min(axis=1))
        rows, cols = np.nonzero(dist_i <= radius)
        hit_rows.append(rows.astype(np.int64))
        hit_cols.append(cols.astype(np.int64) + start)
    rows_all = np.concatenate(hit_rows)
    cols_all = np.concatenate(hit_cols)
    order = np.lexsort((cols_all, rows_all))
    rows_all, cols_all = rows_all[order], cols_all[order]
    bounds = np.searchsorted(rows_all, np.arange(len(queries) + 1))
    within = [cols_all[bounds[i] : bounds[i + 1]] for i in range(len(queries))]
    return within, nearest


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Everything a run depends on; recorded in the JSON."""

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    queries: int = 1000
    seed: int = 0
    out: Path = DEFAULT_OUT
    quick: bool = False
    dense: tuple[str, ...] = ("Flat", "HNSW32", "IVF{nlist},Flat", "IVF{nlist},SQ8")
    binary: tuple[str, ...] = ("BFlat", "BMIH8", "BMIH16", "BMIH32")
    ef_search: tuple[int, ...] = (16, 32, 64, 128, 256)
    nprobe: tuple[int, ...] = (1, 4, 16, 64, 128)
    ef_construction: int = 80
    #: nlist = factor * sqrt(N). 2, not the textbook 4: k-means costs ~nlist^2 here (the
    #: training set grows with nlist); 4 * sqrt(1M) lists would take ~7-8 min per index here.
    ivf_lists_factor: float = 2.0
    ivf_train_per_list: int = 39
    batch: int = 256
    #: faiss threads for one-query-at-a-time search (None: faiss's default, all cores). One:
    #: a service runs one query per request thread, and on a loaded 2-core machine an OpenMP
    #: region around a single query stalls for a scheduler slice (see "default_threads").
    single_query_threads: int | None = 1
    latency_budget_s: float = 8.0
    min_latency_queries: int = 20
    warmup_s: float = 2.0
    throughput_budget_s: float = 20.0
    max_build_s: float = 1500.0
    #: Milvus index types to measure too (FLAT, HNSW, IVF_FLAT, BIN_FLAT, BIN_IVF_FLAT),
    #: against a Milvus started for the run, or at ``milvus_uri``.
    milvus: tuple[str, ...] = ()
    milvus_uri: str | None = None
    command: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            name: (str(value) if isinstance(value, Path) else value)
            for name, value in self.__dict__.items()
        }


def quick_config(**overrides: Any) -> Config:
    """A configuration small enough for tests: tiny sweeps and time budgets."""
    base: dict[str, Any] = {
        "sizes": (2000,),
        "queries": 60,
        "quick": True,
        "ef_search": (16, 64),
        "nprobe": (1, 16),
        "latency_budget_s": 0.3,
        "min_latency_queries": 5,
        "warmup_s": 0.05,
        "throughput_budget_s": 2.0,
        "max_build_s": 60.0,
    }
    base.update(overrides)
    return Config(**base)


def nlist_for(n: int, factor: float) -> int:
    return max(1, round(factor * math.sqrt(n)))


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
    saved = _saved_bytes(index, n)
    result["memory"] = {
        "saved_bytes": saved,
        "bytes_per_ref": saved / n,
        "ratio_to_raw": saved / n / (DIM * 4),
        "rss_delta_bytes_per_ref": built.rss_delta / n,
    }
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

    def one(i: int) -> object:
        return index.search(q[i : i + 1], k=K)

    def batch(s: slice) -> list[I64]:
        return index.search(q[s], k=K).ids

    _warm_up(one, order, cfg)
    answers, throughput = _batched(batch, len(q), cfg)
    scored = len(answers)
    r1, r10 = dense_recall(answers, data.refs, q[:scored], truth[:scored], K)
    return {
        "param": knob,
        "value": value,
        "latency": _single_query(one, order, cfg, data.near, baseline=knob is None),
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
    saved = _saved_bytes(index, n)
    result["memory"] = {
        "saved_bytes": saved,
        "bytes_per_ref": saved / n,
        "ratio_to_raw": saved / n / (BITS // 8),
        "rss_delta_bytes_per_ref": built.rss_delta / n,
    }
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
    q = data.queries

    def one(i: int) -> object:
        return index.search(q[i : i + 1], radius=RADIUS)

    def batch(s: slice) -> list[I64]:
        return index.search(q[s], radius=RADIUS).ids

    _warm_up(one, order, cfg)
    answers, throughput = _batched(batch, len(q), cfg)
    return {
        "param": None,
        "value": None,
        "latency": _single_query(one, order, cfg, data.near, baseline=baseline),
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


# -- choosing ---------------------------------------------------------------------------------


def _cheapest(structure: dict[str, Any]) -> dict[str, Any] | None:
    """The cheapest setting reaching the recall target on near-duplicates, else the best one."""
    if structure.get("status") != "ok":
        return None
    settings: list[dict[str, Any]] = structure["settings"]
    reaching = [s for s in settings if _near_recall(s) >= RECALL_TARGET]
    if reaching:
        return min(reaching, key=lambda s: (s["value"] or 0, s["latency"]["p50_ms"]))
    return max(settings, key=_near_recall)


def _near_recall(setting: dict[str, Any]) -> float:
    recall = setting["recall"]["near"]
    value = recall.get("at1", recall.get("radius"))
    return float(value) if value is not None and not math.isnan(value) else 0.0


def _add_ratios(structures: dict[str, dict[str, Any]], baseline: str) -> None:
    base = structures.get(baseline)
    if not base or base.get("status") != "ok":
        return
    b = base["settings"][0]
    for entry in structures.values():
        for s in entry.get("settings", []):
            lat = s["latency"]
            s["vs_baseline"] = {
                "baseline": baseline,
                "speedup_p50": b["latency"]["p50_ms"] / lat["p50_ms"],
                "speedup_p99": b["latency"]["p99_ms"] / lat["p99_ms"],
                "throughput_ratio": s["throughput"]["qps"] / b["throughput"]["qps"],
            }
        chosen = _cheapest(entry)
        if chosen is not None:
            entry["chosen"] = {"param": chosen["param"], "value": chosen["value"]}


def _chosen_setting(entry: dict[str, Any]) -> dict[str, Any] | None:
    chosen = entry.get("chosen")
    if chosen is None:
        return None
    for s in entry["settings"]:
        if s["param"] == chosen["param"] and s["value"] == chosen["value"]:
            return dict(s)
    return None


def best_approximate(
    structures: dict[str, dict[str, Any]], baseline: str
) -> tuple[str, dict[str, Any]] | None:
    """The approximate structure (at its cheapest good setting) with the lowest p99."""
    best: tuple[str, dict[str, Any]] | None = None
    for name, entry in structures.items():
        if name == baseline:
            continue
        s = _chosen_setting(entry)
        if s is None:
            continue
        key = (-int(_near_recall(s) >= RECALL_TARGET), s["latency"]["p99_ms"])
        if best is None or key < (
            -int(_near_recall(best[1]) >= RECALL_TARGET),
            best[1]["latency"]["p99_ms"],
        ):
            best = (name, s)
    return best


def recommend_dense(structures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flat while its p99 meets the budget, else the best approximate structure."""
    flat = _chosen_setting(structures.get("Flat", {}))
    approx = best_approximate(structures, "Flat")
    if flat is not None and flat["latency"]["p99_ms"] <= LATENCY_BUDGET_MS:
        return {"structure": "Flat", "params": {}, "why": "exact flat p99 within the budget"}
    if approx is None:
        return {"structure": "Flat", "params": {}, "why": "no approximate structure measured"}
    name, s = approx
    why = "flat p99 over the budget; lowest-p99 approximate structure reaching recall@1 >= 0.99"
    if _near_recall(s) < RECALL_TARGET:
        why = "flat p99 over the budget; NO approximate structure reached recall@1 >= 0.99"
    return {"structure": name, "params": {s["param"]: s["value"]}, "why": why}


def recommend_binary(structures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A multi-hash only when exact and at least 1.5x faster (p50) than the flat scan."""
    approx = best_approximate(structures, "BFlat")
    if approx is not None:
        name, s = approx
        ratio = s.get("vs_baseline", {}).get("speedup_p50", 0.0)
        if _near_recall(s) >= 1.0 and ratio >= BINARY_SPEEDUP_TARGET:
            return {"structure": name, "params": {}, "why": f"exact and {ratio:.1f}x BFlat (p50)"}
    return {"structure": "BFlat", "params": {}, "why": "no multi-hash was exact and 1.5x faster"}


def _flat_crossover(sizes: dict[str, Any]) -> float | None:
    """N at which the flat scan's p99 reaches the budget, fitting p99 = a * N^b over sizes."""
    points = []
    for size, entry in sizes.items():
        flat = _chosen_setting(entry["dense"]["structures"].get("Flat", {}))
        if flat is not None:
            points.append((int(size), flat["latency"]["p99_ms"]))
    if len(points) < 2:
        return None
    x = np.log([p[0] for p in points])
    y = np.log([p[1] for p in points])
    b, a = np.polyfit(x, y, 1)
    if b <= 0:
        return None
    return float(math.exp((math.log(LATENCY_BUDGET_MS) - a) / b))


def _targets(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    size = max(sizes, key=int)
    dense = sizes[size]["dense"]["structures"]
    binary = sizes[size]["binary"]["structures"]
    targets: list[dict[str, Any]] = []

    def target(
        name: str,
        structure: str,
        setting: dict[str, Any] | None,
        measured: float,
        op: str,
        threshold: float,
    ) -> None:
        ok = measured <= threshold if op == "<=" else measured >= threshold
        targets.append(
            {
                "name": name,
                "size": int(size),
                "structure": structure,
                "setting": None if setting is None else {k: setting[k] for k in ("param", "value")},
                "measured": measured,
                "op": op,
                "threshold": threshold,
                "result": "PASS" if ok and not math.isnan(measured) else "FAIL",
            }
        )

    def unmeasured(name: str, note: str) -> None:
        targets.append(
            {"name": name, "size": int(size), "result": "FAIL", "measured": None, "note": note}
        )

    approx = best_approximate(dense, "Flat")
    if approx is None:
        unmeasured("dense approximate lookup", "no approximate dense structure was measured")
    else:
        name, s = approx
        speed = s.get("vs_baseline", {}).get("speedup_p50", float("nan"))
        target(
            "dense approximate p99 latency (ms)",
            name,
            s,
            s["latency"]["p99_ms"],
            "<=",
            LATENCY_BUDGET_MS,
        )
        target(
            "dense approximate recall@1 on near-duplicates",
            name,
            s,
            _near_recall(s),
            ">=",
            RECALL_TARGET,
        )
        target(
            "dense approximate speed-up vs Flat (p50)", name, s, speed, ">=", DENSE_SPEEDUP_TARGET
        )
        target(
            "dense approximate index memory / raw vector bytes",
            name,
            s,
            dense[name]["memory"]["ratio_to_raw"],
            "<=",
            MEMORY_RATIO_TARGET,
        )
    bapprox = best_approximate(binary, "BFlat")
    if bapprox is None:
        unmeasured("binary multi-hash lookup", "no multi-hash structure was measured")
    else:
        name, s = bapprox
        target(
            "binary radius-31 recall (all queries)",
            name,
            s,
            s["recall"]["all"]["radius"],
            ">=",
            1.0,
        )
        target(
            "binary speed-up vs BFlat (p50)",
            name,
            s,
            s.get("vs_baseline", {}).get("speedup_p50", float("nan")),
            ">=",
            BINARY_SPEEDUP_TARGET,
        )
        target(
            "binary index memory / raw code bytes",
            name,
            s,
            binary[name]["memory"]["ratio_to_raw"],
            "<=",
            MEMORY_RATIO_TARGET,
        )
    return targets


def choose_structure_advice(sizes: dict[str, Any], recommended: dict[str, Any]) -> dict[str, Any]:
    """What the numbers say about ``index.choose_structure``'s keyword defaults."""
    ordered = sorted(recommended, key=int)
    flat_sizes = [int(s) for s in ordered if recommended[s]["dense"]["structure"] == "Flat"]
    approx_sizes = [int(s) for s in ordered if recommended[s]["dense"]["structure"] != "Flat"]
    dense_approx = next(
        (
            recommended[s]["dense"]["structure"]
            for s in reversed(ordered)
            if recommended[s]["dense"]["structure"] != "Flat"
        ),
        None,
    )
    binary_approx = next(
        (
            recommended[s]["binary"]["structure"]
            for s in reversed(ordered)
            if recommended[s]["binary"]["structure"] != "BFlat"
        ),
        None,
    )
    crossover = _flat_crossover(sizes)
    defaults = inspect.signature(choose_structure).parameters
    current = {
        name: defaults[name].default for name in ("approx_above", "dense_approx", "binary_approx")
    }
    above = int(current["approx_above"])
    lo = max(flat_sizes, default=0)
    hi = min(approx_sizes, default=None)
    consistent = lo <= above and (hi is None or above < hi)
    return {
        "current_defaults": current,
        "largest_size_recommending_flat": lo or None,
        "smallest_size_recommending_approximate": hi,
        "flat_p99_reaches_budget_at_n": crossover,
        "approx_above_consistent": consistent,
        "dense_approx_measured_best": dense_approx,
        "binary_approx_measured_best": binary_approx,
    }


# -- the run ----------------------------------------------------------------------------------


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


# -- running ----------------------------------------------------------------------------------


def _bench_size(n: int, cfg: Config, milvus: MilvusRun | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    order_rng = np.random.default_rng([cfg.seed, 0x0D, n])
    order = order_rng.permutation(cfg.queries).tolist()

    _log(f"dense N={n:,}: generating {n:,} references and {cfg.queries} queries")
    with stopwatch() as t:
        data = dense_dataset(n, cfg.queries, cfg.seed)
    _log(f"  generated in {t[0]:.1f}s ({data.clusters} clusters); exact search in numpy")
    with stopwatch() as t_truth:
        _, truth = exact_dense_topk(data.refs, data.queries, K)
    _log(f"  exact top-{K} in {t_truth[0]:.1f}s")
    structures: dict[str, dict[str, Any]] = {}
    nlist = nlist_for(n, cfg.ivf_lists_factor)
    for template in cfg.dense:
        structure = template.replace("{nlist}", str(nlist))
        try:
            structures[structure] = _bench_dense_structure(structure, data, truth, cfg, order)
        except (RuntimeError, ValueError, MemoryError) as e:
            _log(f"  {structure} failed: {e}")
            structures[structure] = {"structure": structure, "status": "error", "error": str(e)}
        gc.collect()
    _add_ratios(structures, "Flat")
    milvus_dense = None
    if milvus is not None and "Flat" in structures:
        milvus_dense = (data, truth, structures["Flat"])
        out["milvus"] = _bench_milvus_size(n, cfg, milvus, milvus_dense, None, order)
    out["dense"] = {
        "baseline": "Flat",
        "raw_bytes_per_ref": DIM * 4,
        "nlist": nlist,
        "data": _dense_data_stats(data, truth, t[0], t_truth[0]),
        "structures": structures,
    }
    del data, truth, milvus_dense
    gc.collect()

    _log(f"binary N={n:,}: generating codes and queries")
    with stopwatch() as t:
        bdata = binary_dataset(n, cfg.queries, cfg.seed)
    with stopwatch() as t_truth:
        within, nearest = exact_hamming_within(bdata.refs, bdata.queries, RADIUS)
    _log(f"  generated in {t[0]:.1f}s, exact radius-{RADIUS} answers in {t_truth[0]:.1f}s")
    bstructures: dict[str, dict[str, Any]] = {}
    for structure in cfg.binary:
        try:
            bstructures[structure] = _bench_binary_structure(structure, bdata, within, cfg, order)
        except (RuntimeError, ValueError, MemoryError) as e:
            _log(f"  {structure} failed: {e}")
            bstructures[structure] = {"structure": structure, "status": "error", "error": str(e)}
        gc.collect()
    _add_ratios(bstructures, "BFlat")
    if milvus is not None and "BFlat" in bstructures:
        binary = (bdata, within, bstructures["BFlat"])
        found = _bench_milvus_size(n, cfg, milvus, None, binary, order)
        out.setdefault("milvus", {"uri": found["uri"]}).update(binary=found["binary"])
    out["binary"] = {
        "baseline": "BFlat",
        "radius": RADIUS,
        "raw_bytes_per_ref": BITS // 8,
        "data": _binary_data_stats(bdata, within, nearest, t[0], t_truth[0]),
        "structures": bstructures,
    }
    return out


def _pcts(values: npt.NDArray[Any]) -> dict[str, float]:
    if len(values) == 0:
        return {}
    p = np.percentile(values, [5, 50, 95])
    return {"p5": float(p[0]), "p50": float(p[1]), "p95": float(p[2])}


def _dense_data_stats(data: DenseData, truth: F32, gen_s: float, truth_s: float) -> dict[str, Any]:
    near = data.near
    src = data.source[near]
    return {
        "clusters": data.clusters,
        "generate_seconds": gen_s,
        "exact_search_seconds": truth_s,
        "near_cosine_to_source": _pcts(np.einsum("ij,ij->i", data.queries[near], data.refs[src])),
        "near_top1_cosine": _pcts(truth[near, 0]),
        "near_second_cosine": _pcts(truth[near, 1]) if truth.shape[1] > 1 else {},
        "fresh_top1_cosine": _pcts(truth[~near, 0]),
        "fresh_top10_cosine": _pcts(truth[~near, -1]),
    }


def _binary_data_stats(
    data: BinaryData, within: list[I64], nearest: I64, gen_s: float, truth_s: float
) -> dict[str, Any]:
    counts = np.array([len(w) for w in within])
    return {
        "families": data.clusters,
        "generate_seconds": gen_s,
        "exact_search_seconds": truth_s,
        "near_flips": _pcts(data.flips[data.near]),
        "near_neighbours_within_radius": _pcts(counts[data.near]),
        "fresh_neighbours_within_radius": _pcts(counts[~data.near]),
        "fresh_nearest_distance": _pcts(nearest[~data.near]),
    }


def run(cfg: Config) -> dict[str, Any]:
    """Run the benchmark, write ``lookup.json`` and the plots into ``cfg.out``; return the JSON."""
    started = time.perf_counter()
    info = machine()
    info["faiss_threads"] = _faiss_threads()
    _log(
        f"machine: {info['cpu']} ({info['cores']} cores, faiss threads {info['faiss_threads']}); "
        f"numpy {info['libraries'].get('numpy')}, faiss {info['libraries'].get('faiss-cpu')}"
    )
    sizes: dict[str, Any] = {}
    with milvus_for(cfg) as milvus:
        if milvus is not None:
            info["libraries"]["milvus"] = _version("milvus")
            info["libraries"]["pymilvus"] = _version("pymilvus")
        for n in cfg.sizes:
            sizes[str(n)] = _bench_size(n, cfg, milvus)
    recommended = {
        size: {
            "dense": recommend_dense(entry["dense"]["structures"]),
            "binary": recommend_binary(entry["binary"]["structures"]),
        }
        for size, entry in sizes.items()
    }
    payload: dict[str, Any] = {
        "benchmark": "lookup",
        "command": cfg.command,
        "argv": sys.argv,
        "machine": info,
        "config": cfg.to_json(),
        "budgets": {
            "latency_p99_ms": LATENCY_BUDGET_MS,
            "recall_at1": RECALL_TARGET,
            "dense_speedup": DENSE_SPEEDUP_TARGET,
            "binary_speedup": BINARY_SPEEDUP_TARGET,
            "memory_ratio": MEMORY_RATIO_TARGET,
        },
        "sizes": sizes,
        "targets": _targets(sizes),
        "recommended": recommended,
        "choose_structure": choose_structure_advice(sizes, recommended),
        "seconds": time.perf_counter() - started,
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    payload["plots"] = plot(payload, cfg.out)
    write_json(cfg.out / "lookup.json", payload)
    _log(f"wrote {cfg.out / 'lookup.json'} after {payload['seconds']:.0f}s")
    return payload


# -- plots ------------------------------------------------------------------------------------


def plot(payload: dict[str, Any], out: Path) -> list[str]:
    """``lookup_latency.png`` (p99 vs N, log-log) and ``lookup_tradeoff.png`` (recall vs p50)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    sizes = payload["sizes"]
    ns = sorted(sizes, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, kind in zip(axes, ("dense", "binary"), strict=True):
        names: list[str] = []
        for n in ns:
            for name in sizes[n][kind]["structures"]:
                if name.replace(str(sizes[n]["dense"]["nlist"]), "{nlist}") not in names:
                    names.append(name.replace(str(sizes[n]["dense"]["nlist"]), "{nlist}"))
        for template in names:
            xs, ys = [], []
            label = template
            for n in ns:
                name = template.replace("{nlist}", str(sizes[n]["dense"]["nlist"]))
                s = _chosen_setting(sizes[n][kind]["structures"].get(name, {}))
                if s is not None:
                    xs.append(int(n))
                    ys.append(s["latency"]["p99_ms"])
                    if s["param"]:
                        label = f"{template} ({s['param']}={s['value']} at max N"
                        if _near_recall(s) < RECALL_TARGET:
                            label += f", recall@1 only {_near_recall(s):.3f}"
                        label += ")"
            if xs:
                ax.plot(xs, ys, marker="o", label=label.replace("{nlist}", "<2√N>"))
        ax.axhline(LATENCY_BUDGET_MS, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("references N")
        ax.set_ylabel("single-query p99 latency (ms)")
        ax.yaxis.set_minor_formatter(NullFormatter())
        title = "dense 512-d IP, k=10" if kind == "dense" else f"binary 256-bit, radius {RADIUS}"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Single-query p99 latency vs N (faiss on 1 thread); each approximate structure at its"
        " cheapest setting reaching recall@1 >= 0.99 on near-duplicates, else its best",
        fontsize=9,
    )
    fig.tight_layout()
    latency_png = out / "lookup_latency.png"
    fig.savefig(latency_png, dpi=90)
    plt.close(fig)

    fig, axes_any = plt.subplots(1, len(ns), figsize=(4.2 * len(ns), 4.0), squeeze=False)
    for ax, n in zip(axes_any[0], ns, strict=True):
        for name, entry in sizes[n]["dense"]["structures"].items():
            if entry.get("status") != "ok":
                continue
            xs = [s["latency"]["p50_ms"] for s in entry["settings"]]
            near = [s["recall"]["near"]["at1"] for s in entry["settings"]]
            fresh = [s["recall"]["fresh"]["at1"] for s in entry["settings"]]
            (line,) = ax.plot(xs, near, marker="o", label=f"{name} near-dup")
            ax.plot(
                xs, fresh, marker="x", linestyle=":", color=line.get_color(), label=f"{name} fresh"
            )
            for x, y, s in zip(xs, near, entry["settings"], strict=True):
                if s["value"] is not None:
                    ax.annotate(
                        str(s["value"]),
                        (x, y),
                        fontsize=6,
                        xytext=(2, 2),
                        textcoords="offset points",
                    )
        ax.axhline(RECALL_TARGET, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("single-query p50 latency (ms)")
        ax.set_ylabel("recall@1")
        ax.set_title(f"dense N={int(n):,}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("recall@1 vs latency (labels: ef_search / nprobe)", fontsize=10)
    fig.tight_layout()
    tradeoff_png = out / "lookup_tradeoff.png"
    fig.savefig(tradeoff_png, dpi=90)
    plt.close(fig)
    made = [latency_png.name, tradeoff_png.name]
    with_milvus = [n for n in ns if "milvus" in sizes[n]]
    if with_milvus:
        made.append(_plot_milvus(sizes[with_milvus[-1]], int(with_milvus[-1]), out, plt))
    return made


def _milvus_rows(size: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, chosen setting) of the faiss baseline and each Milvus structure of ``kind``."""
    section = size.get("milvus", {}).get(kind)
    if not section:
        return []
    baseline = section["baseline"]
    rows = []
    for name, entry in [
        (baseline, size[kind]["structures"][baseline]),
        *section["structures"].items(),
    ]:
        s = _chosen_setting(entry)
        if s is not None:
            rows.append((name, s))
    return rows


def _plot_milvus(size: dict[str, Any], n: int, out: Path, plt: Any) -> str:
    """``lookup_milvus.png``: p50 and p95 of each Milvus structure beside the faiss baseline."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for ax, kind in zip(axes, ("dense", "binary"), strict=True):
        rows = _milvus_rows(size, kind)
        labels = [f"{name}\n{s['param']}={s['value']}" if s["param"] else name for name, s in rows]
        xs = np.arange(len(rows))
        p50 = [s["latency"]["p50_ms"] for _, s in rows]
        p95 = [s["latency"]["p95_ms"] for _, s in rows]
        ax.bar(xs - 0.2, p50, width=0.4, label="p50")
        ax.bar(xs + 0.2, p95, width=0.4, label="p95")
        ax.set_xticks(xs, labels, fontsize=7)
        ax.set_ylabel("single-query latency (ms)")
        title = "dense 512-d IP, k=10" if kind == "dense" else f"binary 256-bit, radius {RADIUS}"
        ax.set_title(f"{title}, N={n:,}")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "Milvus (standalone, one query per call over gRPC) against faiss in-process (1 thread)",
        fontsize=9,
    )
    fig.tight_layout()
    path = out / "lookup_milvus.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


# -- command line -----------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(";") if part.strip())


def command(
    sizes: Annotated[
        str, typer.Option(help="comma-separated numbers of references")
    ] = "10000,100000,1000000",
    queries: Annotated[int, typer.Option(help="queries per size (half near-duplicates)")] = 1000,
    seed: Annotated[int, typer.Option(help="seed of every generator")] = 0,
    out: Annotated[Path, typer.Option(help="folder for lookup.json and the plots")] = DEFAULT_OUT,
    quick: Annotated[bool, typer.Option(help="tiny sweeps and time budgets (tests)")] = False,
    dense: Annotated[
        str, typer.Option(help="';'-separated dense structures; {nlist} = 2*sqrt(N)")
    ] = ";".join(Config.dense),
    binary: Annotated[str, typer.Option(help="';'-separated binary structures")] = ";".join(
        Config.binary
    ),
    ef_search: Annotated[str | None, typer.Option(help="HNSW efSearch sweep")] = None,
    nprobe: Annotated[str | None, typer.Option(help="IVF nprobe sweep")] = None,
    ef_construction: Annotated[int, typer.Option(help="HNSW efConstruction")] = 80,
    max_build_s: Annotated[
        float | None, typer.Option(help="give up on an index whose build runs longer")
    ] = None,
    milvus: Annotated[
        str,
        typer.Option(
            help="';'-separated Milvus index types to measure too (FLAT, HNSW, IVF_FLAT, "
            "BIN_FLAT, BIN_IVF_FLAT), against the faiss Flat/BFlat of the same run"
        ),
    ] = "",
    milvus_uri: Annotated[
        str | None,
        typer.Option(help="a running Milvus to use; default: start one from the milvus wheel"),
    ] = None,
) -> None:
    """Benchmark index lookup: latency, throughput, memory and recall per structure and size."""
    options = [
        f"--sizes {sizes}",
        f"--queries {queries}",
        f"--seed {seed}",
        f"--out {out}",
        f"--dense {shlex.quote(dense)}",
        f"--binary {shlex.quote(binary)}",
        f"--ef-construction {ef_construction}",
    ]
    overrides: dict[str, Any] = {
        "sizes": _ints(sizes),
        "queries": queries,
        "seed": seed,
        "out": Path(out),
        "dense": _names(dense),
        "binary": _names(binary),
        "ef_construction": ef_construction,
    }
    if ef_search:
        overrides["ef_search"] = _ints(ef_search)
        options.append(f"--ef-search {ef_search}")
    if nprobe:
        overrides["nprobe"] = _ints(nprobe)
        options.append(f"--nprobe {nprobe}")
    if max_build_s is not None:
        overrides["max_build_s"] = max_build_s
        options.append(f"--max-build-s {max_build_s:g}")
    if milvus:
        overrides["milvus"] = _names(milvus)
        options.append(f"--milvus {shlex.quote(milvus)}")
    if milvus_uri:
        overrides["milvus_uri"] = milvus_uri
        options.append(f"--milvus-uri {milvus_uri}")
    if quick:
        options.append("--quick")
    overrides["command"] = "python -m benchmarks.lookup " + " ".join(options)
    cfg = quick_config(**overrides) if quick else Config(**overrides)
    payload = run(cfg)
    print_report(payload)


def print_report(payload: dict[str, Any]) -> None:
    """Rich tables: each structure at its chosen setting per size, then the targets."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 170))
    table = Table(title="Lookup (each structure at its cheapest setting with recall@1 >= 0.99)")
    for column in (
        "N",
        "structure",
        "setting",
        "build s",
        "B/ref",
        "mem x",
        "p50 ms",
        "p99 ms",
        "q/s",
        "R@1 near",
        "R@1 fresh",
        "R@10 near",
        "R@10 fresh",
        "x base p50",
    ):
        table.add_column(column, justify="right" if column not in ("structure",) else "left")
    for size, entry in payload["sizes"].items():
        for kind in ("dense", "binary"):
            for name, st in entry[kind]["structures"].items():
                s = _chosen_setting(st)
                if s is None:
                    table.add_row(f"{int(size):,}", name, st.get("status", "?"), *[""] * 11)
                    continue
                rec = s["recall"]
                if kind == "dense":
                    recalls = [
                        f"{rec['near']['at1']:.4f}",
                        f"{rec['fresh']['at1']:.4f}",
                        f"{rec['near']['at10']:.4f}",
                        f"{rec['fresh']['at10']:.4f}",
                    ]
                else:
                    recalls = [
                        f"r31 {rec['near']['radius']:.4f}",
                        f"r31 {rec['fresh']['radius']:.4f}",
                        "",
                        "",
                    ]
                setting = f"{s['param']}={s['value']}" if s["param"] else "-"
                table.add_row(
                    f"{int(size):,}",
                    name,
                    setting,
                    f"{st['build']['seconds']:.1f}",
                    f"{st['memory']['bytes_per_ref']:.0f}",
                    f"{st['memory']['ratio_to_raw']:.2f}",
                    f"{s['latency']['p50_ms']:.3f}",
                    f"{s['latency']['p99_ms']:.3f}",
                    f"{s['throughput']['qps']:.0f}",
                    *recalls,
                    f"{s.get('vs_baseline', {}).get('speedup_p50', float('nan')):.1f}",
                )
    console.print(table)
    targets = Table(title="Targets (at the largest size run)")
    for column in ("target", "N", "structure", "measured", "threshold", "result"):
        targets.add_column(column)
    for t in payload["targets"]:
        measured = t.get("measured")
        targets.add_row(
            t["name"],
            f"{t['size']:,}",
            str(t.get("structure", "")),
            "n/a" if measured is None else f"{measured:.4g}",
            f"{t.get('op', '')} {t.get('threshold', '')}",
            t["result"],
        )
    console.print(targets)
    _print_milvus(payload, console)
    for size, rec in payload["recommended"].items():
        console.print(
            f"N={int(size):,}: dense -> {rec['dense']['structure']} {rec['dense']['params']} "
            f"({rec['dense']['why']}); binary -> {rec['binary']['structure']}"
        )


def _print_milvus(payload: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    sizes = {n: e for n, e in payload["sizes"].items() if "milvus" in e}
    if not sizes:
        return
    table = Table(title="Milvus against the faiss baseline of the same run (x: ratio to it)")
    for column in (
        "N",
        "structure",
        "setting",
        "build s",
        "build x",
        "B/ref",
        "mem x",
        "p50 ms",
        "p95 ms",
        "p50 x",
        "q/s",
        "recall near / fresh",
    ):
        table.add_column(column, justify="left" if column == "structure" else "right")
    for n, size in sizes.items():
        for kind in ("dense", "binary"):
            section = size["milvus"].get(kind, {})
            for name, s in _milvus_rows(size, kind):
                entry = section["structures"].get(name) or size[kind]["structures"][name]
                vs = entry.get("vs_baseline", {})
                rec = s["recall"]
                recall = (
                    f"R@1 {rec['near']['at1']:.3f} / {rec['fresh']['at1']:.3f}"
                    if kind == "dense"
                    else f"r31 {rec['near']['radius']:.3f} / {rec['fresh']['radius']:.3f}"
                )
                table.add_row(
                    f"{int(n):,}",
                    name,
                    f"{s['param']}={s['value']}" if s["param"] else "-",
                    f"{entry['build']['seconds']:.1f}",
                    f"{vs.get('build_seconds_ratio', 1.0):.1f}",
                    f"{entry['memory']['bytes_per_ref']:.0f}",
                    f"{vs.get('memory_ratio', 1.0):.2f}",
                    f"{s['latency']['p50_ms']:.2f}",
                    f"{s['latency']['p95_ms']:.2f}",
                    f"{1 / s.get('vs_baseline', {}).get('speedup_p50', 1.0):.2f}",
                    f"{s['throughput']['qps']:.0f}",
                    recall,
                )
    console.print(table)


if __name__ == "__main__":
    typer.run(command)
