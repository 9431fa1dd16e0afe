"""The FAISS backend: dense (``FaissDenseIndex``) or binary (``FaissBinaryIndex``) by the
spec's metric, any FAISS factory string as its structure, ``auto`` chosen by size.

Registered as ``faiss``, the default backend: ``faiss:IVF1024,Flat`` and ``IVF1024,Flat``
are the same index.
"""

from __future__ import annotations

import math
from typing import Any

from screener.index.backends import AUTO, register_backend
from screener.index.base import IndexCorrupt, IndexSpec, Manifest, Metric, VectorIndex
from screener.index.faiss_binary import FaissBinaryIndex
from screener.index.faiss_dense import FaissDenseIndex


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


def _make(spec: IndexSpec, structure: str, expected_size: int = 0, **params: Any) -> VectorIndex:
    if structure == AUTO:
        structure = choose_structure(spec.metric, expected_size)
    if spec.metric == "ip":
        return FaissDenseIndex(spec, structure, **params)
    return FaissBinaryIndex(spec, structure, **params)


def _restore(manifest: Manifest, arrays: dict[str, Any], options: dict[str, Any]) -> VectorIndex:
    if not manifest.kind.startswith("faiss:"):
        raise IndexCorrupt(f"unknown index kind {manifest.kind!r}")
    spec = manifest.spec
    params = manifest.extra.get("params", {})
    if not isinstance(params, dict):
        raise IndexCorrupt(f"manifest params are not an object: {params!r}")
    structure = manifest.kind.removeprefix("faiss:")
    if spec.metric == "ip":
        return FaissDenseIndex.from_arrays(spec, structure, params, arrays)
    return FaissBinaryIndex.from_arrays(spec, structure, params, arrays)


register_backend("faiss", make=_make, restore=_restore)
