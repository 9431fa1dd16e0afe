"""Nearest-neighbour indexes for the screener: one protocol, several structures.

``create`` builds an empty index for a fingerprint spec from a factory string
(``faiss:IVF1024,Flat``, ``milvus:HNSW``; backends register by name, see ``backends``),
``load`` reopens a saved one and checks that it was made for the same spec and survived
intact. Which structure ``"auto"``
picks is :func:`choose_structure`'s business; its thresholds are keyword defaults so that
the lookup benchmark (``benchmarks/``) can measure and move them without touching callers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from screener.index._persist import read_index_arrays, read_manifest
from screener.index._validate import check_spec
from screener.index.backends import backend, backend_names, parse
from screener.index.base import (
    IdArray,
    IndexCorrupt,
    IndexSpec,
    IndexSpecMismatch,
    Manifest,
    Metric,
    Neighbours,
    VectorIndex,
    VectorIndexError,
)
from screener.index.faiss_backend import choose_structure
from screener.index.faiss_binary import FaissBinaryIndex
from screener.index.faiss_dense import FaissDenseIndex
from screener.index.milvus import MilvusIndex, MilvusUnavailable
from screener.index.numpy_ref import NumpyIndex

__all__ = [
    "FaissBinaryIndex",
    "FaissDenseIndex",
    "IdArray",
    "IndexCorrupt",
    "IndexSpec",
    "IndexSpecMismatch",
    "Manifest",
    "Metric",
    "MilvusIndex",
    "MilvusUnavailable",
    "Neighbours",
    "NumpyIndex",
    "VectorIndex",
    "VectorIndexError",
    "backend",
    "backend_names",
    "choose_structure",
    "create",
    "load",
    "parse",
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


def create(
    spec: IndexSpec, structure: str = "auto", expected_size: int = 0, **params: Any
) -> VectorIndex:
    """An empty index for ``spec``.

    ``structure`` is a factory string (see `backends.parse`): ``"numpy"``, a faiss structure
    with or without its backend (``"Flat"``, ``"faiss:HNSW32"``, ``"IVF16,Flat"``,
    ``"BFlat"``, ``"BMIH16"``, ...) or ``"auto"``. ``params`` are the structure's tuning
    keywords (``ef_search``, ``nprobe``, ``train_min``, ``max_flips``...). ``"auto"`` picks
    by ``expected_size`` (see `choose_structure`).

    ``"milvus"`` or ``"milvus:<type>"`` (``FLAT``, ``HNSW``, ``IVF_FLAT``, ``BIN_FLAT``,
    ``BIN_IVF_FLAT``) is a Milvus collection; ``params`` then also take ``uri`` (required),
    ``collection`` (attached to when it exists), ``token`` and ``consistency`` (see
    :class:`MilvusIndex`).
    """
    check_spec(spec)
    name, structure = parse(structure)
    return backend(name).make(spec, structure, expected_size=expected_size, **params)


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
    """Reopen through the backend the manifest's kind names (``faiss:Flat``, ``numpy``)."""
    name = manifest.kind.partition(":")[0]
    if name not in backend_names():
        raise IndexCorrupt(f"unknown index kind {manifest.kind!r}")
    return backend(name).restore(manifest, arrays, options)
