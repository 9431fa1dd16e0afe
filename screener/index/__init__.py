"""Nearest-neighbour indexes for the screener: one protocol, several structures.

``create`` builds an empty index for a fingerprint spec, ``load`` reopens a saved one and
checks that it was made for the same spec and survived intact. Which structure ``"auto"``
picks is :func:`choose_structure`'s business; its thresholds are keyword defaults so that
the lookup benchmark (``benchmarks/``) can measure and move them without touching callers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from screener.index._persist import read_index_arrays, read_manifest
from screener.index._validate import check_spec
from screener.index.base import (
    IdArray,
    IndexCorrupt,
    IndexError_,
    IndexSpec,
    IndexSpecMismatch,
    Manifest,
    Metric,
    Neighbours,
    VectorIndex,
)
from screener.index.faiss_binary import FaissBinaryIndex
from screener.index.faiss_dense import FaissDenseIndex
from screener.index.milvus import MilvusIndex, MilvusUnavailable
from screener.index.milvus import restore as _restore_milvus
from screener.index.numpy_ref import NumpyIndex

__all__ = [
    "FaissBinaryIndex",
    "FaissDenseIndex",
    "IdArray",
    "IndexCorrupt",
    "IndexError_",
    "IndexSpec",
    "IndexSpecMismatch",
    "Manifest",
    "Metric",
    "MilvusIndex",
    "MilvusUnavailable",
    "Neighbours",
    "NumpyIndex",
    "VectorIndex",
    "choose_structure",
    "create",
    "load",
    "read_manifest",
    "set_threads",
]


def set_threads(threads: int) -> None:
    """Threads FAISS may use per search (0: one per core).

    A check searches a handful of vectors at a time; spreading that over OpenMP threads
    costs more in synchronisation than it saves, and on a busy machine the waiting threads
    made a 14-query binary search 100x slower (71 ms against 0.7 ms measured). Parallelism
    belongs to concurrent checks, so the screener sets 1.
    """
    from screener.index._faiss import faiss

    faiss.omp_set_num_threads(threads if threads > 0 else (os.cpu_count() or 1))


def choose_structure(
    metric: Metric,
    expected_size: int,
    *,
    approx_above: int = 50_000,
    dense_approx: str = "IVF{nlist},Flat",
    binary_approx: str = "BFlat",
) -> str:
    """The structure to use for ``expected_size`` rows: exact up to ``approx_above``.

    ``{nlist}`` in ``dense_approx`` becomes about 2*sqrt(expected_size) inverted lists.

    These defaults are what the lookup benchmark measured
    (``benchmarks/results/lookup/lookup.json``: synthetic clustered 512-d vectors and
    256-bit codes, 2 shared cores, faiss on 1 thread per query):

    * exact ``Flat`` up to 50k: its p99 reaches 10 ms at about 47k vectors;
    * above, ``IVF<2*sqrt(N)>,Flat`` at ``nprobe=16``: at 1M p99 2.8 ms, recall@1 1.000 on
      near-duplicates, 99x faster than ``Flat``, 1.01x the raw bytes (``IVF..,SQ8`` is 4x
      smaller and 1.7x faster but quantises the scores the policy thresholds read);
      ``HNSW32`` found only 74% of near-duplicates at 1M (ef_search 64) and 89% at 256;
    * binary: ``BFlat`` at every size; multi-index hashing (``BMIH16``) was exact but at
      1M only 1.07x faster at p50, slower at p99, for 2.7x the memory.
    """
    if metric not in ("ip", "hamming"):
        raise ValueError(f"metric must be 'ip' or 'hamming', got {metric!r}")
    if expected_size <= approx_above:
        return "Flat" if metric == "ip" else "BFlat"
    nlist = max(16, round(2 * math.sqrt(expected_size)))
    return (dense_approx if metric == "ip" else binary_approx).format(nlist=nlist)


def create(
    spec: IndexSpec, structure: str = "auto", expected_size: int = 0, **params: Any
) -> VectorIndex:
    """An empty index for ``spec``.

    ``structure`` is ``"numpy"``, a faiss structure (``"Flat"``, ``"HNSW32"``,
    ``"IVF16,Flat"``, ``"BFlat"``, ``"BMIH16"``, ...) or ``"auto"``. ``params`` are the
    structure's tuning keywords (``ef_search``, ``nprobe``, ``train_min``, ``max_flips``...).
    ``"auto"`` picks by ``expected_size`` (see `choose_structure`).

    ``"milvus"`` or ``"milvus:<type>"`` (``FLAT``, ``HNSW``, ``IVF_FLAT``, ``BIN_FLAT``,
    ``BIN_IVF_FLAT``) is a Milvus collection; ``params`` then also take ``uri`` (required),
    ``collection`` (attached to when it exists), ``token`` and ``consistency`` (see
    :class:`MilvusIndex`).
    """
    check_spec(spec)
    if structure == "milvus" or structure.startswith("milvus:"):
        milvus_structure = structure.partition(":")[2] or "auto"
        return MilvusIndex(spec, milvus_structure, expected_size=expected_size, **params)
    if structure == "auto":
        structure = choose_structure(spec.metric, expected_size)
    if structure == "numpy":
        if params:
            raise ValueError(f"the numpy index takes no parameters, got {sorted(params)}")
        return NumpyIndex(spec)
    if spec.metric == "ip":
        return FaissDenseIndex(spec, structure, **params)
    return FaissBinaryIndex(spec, structure, **params)


def load(path: Path, spec: IndexSpec, **options: Any) -> tuple[VectorIndex, Manifest]:
    """Reopen the index saved at ``path``, which must have been made for ``spec``.

    A Milvus index is reattached to its collection (``options`` may carry its ``token``).

    Raises ``IndexSpecMismatch`` if the manifest names another spec, and ``IndexCorrupt``
    if either file is missing, malformed, or the index bytes fail the manifest's checksum.
    """
    path = Path(path)
    manifest = read_manifest(path)
    if manifest.spec != spec:
        raise IndexSpecMismatch(
            f"index {path} was built for {manifest.spec}, but {spec} was asked for"
        )
    arrays = read_index_arrays(path, manifest)
    try:
        index = _restore(manifest, arrays, options)
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise IndexCorrupt(f"index {path} ({manifest.kind}) cannot be restored: {e}") from e
    if len(index) != manifest.count:
        raise IndexCorrupt(
            f"index {path} holds {len(index)} vectors, its manifest says {manifest.count}"
        )
    return index, manifest


def _restore(manifest: Manifest, arrays: dict[str, Any], options: dict[str, Any]) -> VectorIndex:
    spec, kind = manifest.spec, manifest.kind
    if kind.startswith("milvus:"):
        return _restore_milvus(manifest, arrays, **options)
    if kind == "numpy":
        return NumpyIndex.from_arrays(spec, arrays)
    if not kind.startswith("faiss:"):
        raise IndexCorrupt(f"unknown index kind {kind!r}")
    params = manifest.extra.get("params", {})
    if not isinstance(params, dict):
        raise IndexCorrupt(f"manifest params are not an object: {params!r}")
    structure = kind.removeprefix("faiss:")
    if spec.metric == "ip":
        return FaissDenseIndex.from_arrays(spec, structure, params, arrays)
    return FaissBinaryIndex.from_arrays(spec, structure, params, arrays)
