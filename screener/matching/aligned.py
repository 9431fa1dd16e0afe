"""The aligned agreement of a check's leading candidates (`screener.models.alignment`).

Each registered reference is kept as a small grey square, made from its stored image the
first time a check needs it and held in memory (4 KB each) by the image's SHA-256, so
that a re-registered or removed reference is never confused with another. A check
measures its leading candidates only: the policy's ``max_matches`` best by fused score,
the matches a verdict reports.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from screener.core.decode import decode
from screener.core.errors import ScreenerError
from screener.models import alignment
from screener.store.catalog import Catalog

SIGNAL = "aligned_agreement"
# The long side a reference is decoded at before it is squeezed to its square.
DECODE_SIDE = 256


class ReferenceSquares:
    """Each reference's square, by image SHA-256, the most recently used kept."""

    def __init__(self, capacity: int = 16384, params: alignment.AlignParams = alignment.DEFAULT):
        self.capacity = capacity
        self.params = params
        self._squares: OrderedDict[str, alignment.Square | None] = OrderedDict()
        self._lock = threading.Lock()  # checks run on several threads in the service

    def __len__(self) -> int:
        return len(self._squares)

    def square(self, catalog: Catalog, sha256: str) -> alignment.Square | None:
        """The square of the stored image ``sha256``; None where it cannot be read."""
        with self._lock:
            if sha256 in self._squares:
                self._squares.move_to_end(sha256)
                return self._squares[sha256]
        try:
            decoded = decode(catalog.blob(sha256), max_side=DECODE_SIDE)
            made: alignment.Square | None = alignment.square_of(
                decoded.image, decoded.alpha, self.params
            )
        except ScreenerError:  # a blob gone or no longer decodable: nothing to compare
            made = None
        with self._lock:
            self._squares[sha256] = made
            while len(self._squares) > self.capacity:
                self._squares.popitem(last=False)
        return made

    def of_works(
        self, catalog: Catalog, work_ids: Sequence[str]
    ) -> dict[str, list[tuple[int, alignment.Square]]]:
        """The squares of each work's references, with their ids (one catalog query)."""
        found: dict[str, list[tuple[int, alignment.Square]]] = {}
        for work_id, references in catalog.references_of_works(work_ids).items():
            for reference in references:
                square = self.square(catalog, reference.sha256)
                if square is not None:
                    found.setdefault(work_id, []).append((reference.id, square))
        return found


def measure(
    squares: ReferenceSquares,
    catalog: Catalog,
    query: alignment.Grey,
    work_ids: Sequence[str],
    quads: Mapping[str, tuple[int, Sequence[tuple[float, float]]]],
) -> dict[str, tuple[float, int]]:
    """The aligned agreement of each work in ``work_ids`` with the query's grey pixels, and
    the reference that gave it; ``quads``: per work, the reference id and quad (in the
    query's grey pixels) that verified keypoints found. Works with nothing measurable are
    left out."""
    found: dict[str, tuple[float, int]] = {}
    if not work_ids:
        return found
    whole = alignment.turns(query, squares.params)
    for work_id, references in squares.of_works(catalog, work_ids).items():
        located = quads.get(work_id)
        for ref_id, square in references:
            quad = [located[1]] if located is not None and located[0] == ref_id else []
            value = alignment.best_agreement([(square, quad)], query, squares.params, whole)
            if value is not None and (work_id not in found or value > found[work_id][0]):
                found[work_id] = (value, ref_id)
    return found
