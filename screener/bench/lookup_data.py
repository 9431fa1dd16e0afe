"""Synthetic data, exact answers, constants and the run configuration of
``screener.bench.lookup``."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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
