"""Turning raw candidate lists into the protocol's ``Neighbours``.

Every implementation produces, per query, some candidate (id, score) pairs; the one
function :func:`select` then applies the radius, orders best first with ties broken by the
smaller id, and cuts to ``k``. Doing this in one place is what makes different structures
answer identically. The radius conversions here translate the protocol's inclusive radius
into faiss's exclusive one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from screener.index.base import IdArray, Neighbours

F32Array = npt.NDArray[np.float32]
Row = tuple[IdArray, F32Array]


def empty_row() -> Row:
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)


def select(
    ids: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    k: int | None,
    radius: float | None,
    higher_better: bool,
) -> Row:
    """Keep hits within ``radius``, order best first (smaller id wins a tie), cut to ``k``.

    The radius test is done in float64 so that it means the same for every implementation.
    """
    id_arr = np.asarray(ids, dtype=np.int64)
    sc = np.asarray(scores, dtype=np.float32)
    if radius is not None:
        wide = sc.astype(np.float64)
        keep = wide >= radius if higher_better else wide <= radius
        id_arr, sc = id_arr[keep], sc[keep]
    order = np.lexsort((id_arr, -sc if higher_better else sc))
    if k is not None:
        order = order[:k]
    return id_arr[order], sc[order]


def to_neighbours(rows: list[Row]) -> Neighbours:
    return Neighbours(ids=[r[0] for r in rows], scores=[r[1] for r in rows])


def rows_from_knn(distances: npt.NDArray[np.generic], labels: npt.NDArray[np.int64]) -> list[Row]:
    """Split faiss's (nq, k) answer into rows, dropping the -1 padding."""
    rows = []
    for d, lab in zip(distances, labels, strict=True):
        keep = lab >= 0
        rows.append((lab[keep].astype(np.int64), d[keep].astype(np.float32)))
    return rows


def rows_from_range(
    lims: npt.NDArray[np.generic], distances: npt.NDArray[np.generic], labels: npt.NDArray[np.int64]
) -> list[Row]:
    """Split faiss's flat range-search answer into rows."""
    return [
        (
            labels[lims[i] : lims[i + 1]].astype(np.int64),
            distances[lims[i] : lims[i + 1]].astype(np.float32),
        )
        for i in range(len(lims) - 1)
    ]


def ip_faiss_radius(radius: float) -> float:
    """Faiss keeps inner products ``> r``; return the r that keeps exactly those ``>= radius``.

    Scores are float32, so ``score >= radius`` holds iff ``score >= t`` where t is the
    smallest float32 not below ``radius``; and ``score >= t`` iff ``score > nextafter(t, -inf)``.
    """
    t = np.float32(radius)
    if float(t) < radius:
        t = np.nextafter(t, np.float32(np.inf))
    return float(np.nextafter(t, np.float32(-np.inf)))


def hamming_faiss_radius(radius: float) -> int:
    """Faiss keeps Hamming distances ``< r``; distances are ints: ``<= radius`` is ``< floor+1``."""
    return math.floor(radius) + 1


def knn_resolving_ties(
    knn: Callable[[npt.NDArray[np.generic], int], list[Row]],
    within: Callable[[npt.NDArray[np.generic], float], list[Row]],
    queries: npt.NDArray[np.generic],
    k: int,
    *,
    higher_better: bool,
) -> list[Row]:
    """Exact k-NN whose choice among hits tied at the k-th score is the smallest ids.

    Faiss picks arbitrarily among ties at the cut. Asking for ``k + 1`` shows whether the
    cut falls inside a tie; only then is the query re-run as a range search down to the
    k-th score, which returns every tied hit, and :func:`select` picks among them. ``within``
    takes a score in the caller's own terms (an inclusive bound, with any float slack
    already applied by the caller).
    """
    rows = knn(queries, k + 1)
    out = []
    for i, (ids, sc) in enumerate(rows):
        chosen = (ids, sc)
        if len(sc) > k and sc[k - 1] == sc[k]:
            tied = within(queries[i : i + 1], float(sc[k - 1]))[0]
            if len(tied[0]) >= k:
                chosen = tied
        out.append(select(*chosen, k=k, radius=None, higher_better=higher_better))
    return out
