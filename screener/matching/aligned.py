"""The aligned agreement of a check's leading candidates (`screener.models.alignment`).

Each registered reference is kept as a small square, in grey and in colour, made from its
stored image the first time a check needs it and held in memory (16 KB each, 32 KB with
transparency; at most 16,384, the most recently used) by the image's SHA-256, so
that a re-registered or removed reference is never confused with another. A check
measures its leading candidates only: the policy's ``max_matches`` best by fused score,
the matches a verdict reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from screener.matching.reference_cache import ReferenceCache
from screener.models import alignment
from screener.store.catalog import Catalog

SIGNAL = "aligned_agreement"

# Per work, where template placement put its references in the query: each reference's id
# and its corners in the query's pixels (`screener.matching.placed`).
Placed = Mapping[str, Sequence[tuple[int, alignment.Quad]]]


class ReferenceSquares(ReferenceCache[alignment.Square]):
    """Each reference's square, by image SHA-256, the most recently used kept."""

    def __init__(self, capacity: int = 16384, params: alignment.AlignParams = alignment.DEFAULT):
        super().__init__(lambda d: alignment.square_of(d.image, d.alpha, params), capacity)
        self.params = params


def measure(
    squares: ReferenceSquares,
    catalog: Catalog,
    query: alignment.Grey,
    work_ids: Sequence[str],
    quads: Mapping[str, tuple[int, Sequence[tuple[float, float]], int]],
    placed: Placed | None = None,
    coloured: alignment.Grey | None = None,
) -> dict[str, tuple[float, int]]:
    """The aligned agreement of each work in ``work_ids`` with the query's grey pixels, and
    the reference that gave it; ``quads``: per work, the reference id, quad (in the
    query's grey pixels) and inlier count that verified keypoints found; ``placed``: per
    work, where template placement put references (no keypoints behind them: the median
    rule applies); ``coloured``: the query's colour pixels, for the cells compared in
    colour as a whole and through verified quads (`alignment.best_agreement`). Works with
    nothing measurable are left out."""
    found: dict[str, tuple[float, int]] = {}
    placed = placed or {}
    if not work_ids:
        return found
    whole = alignment.turns(query, squares.params)
    whole_coloured = None if coloured is None else alignment.turns(coloured, squares.params)
    for work_id, references in squares.of_works(catalog, work_ids).items():
        located = quads.get(work_id)
        for ref_id, square in references:
            mine = located if located is not None and located[0] == ref_id else None
            quad = [mine[1]] if mine is not None else []
            inliers = mine[2] if mine is not None else 0
            value = alignment.best_agreement(
                [(square, quad)], query, squares.params, whole, inliers, coloured, whole_coloured
            )
            for where in (q for r, q in placed.get(work_id, ()) if r == ref_id):
                value = _higher(value, alignment.settled(square, query, where, squares.params))
            if value is not None and (work_id not in found or value > found[work_id][0]):
                found[work_id] = (value, ref_id)
    return found


def _higher(a: float | None, b: float | None) -> float | None:
    """The higher of two measured values (None: not measured)."""
    if a is None:
        return b
    return a if b is None or a >= b else b
