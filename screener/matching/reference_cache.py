"""Something made from each registered reference's stored image, on first use, and kept.

A check compares its candidates with their references in ways the indexes do not hold (a
grey square for the aligned agreement, a colour histogram for a character's colours). Each
is made from the stored image the first time a check needs it and held in memory by the
image's SHA-256, so that a re-registered or removed reference is never confused with
another; the least recently used go first past ``capacity``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from screener.core.decode import DecodedImage, decode
from screener.core.errors import ScreenerError
from screener.store.catalog import Catalog

T = TypeVar("T")
# The long side a reference is decoded at before anything is made from it.
DECODE_SIDE = 256


class ReferenceCache(Generic[T]):
    """``make`` of each stored reference image, by SHA-256, the most recently used kept."""

    def __init__(self, make: Callable[[DecodedImage], T | None], capacity: int = 16384) -> None:
        self.make = make
        self.capacity = capacity
        self._made: OrderedDict[str, T | None] = OrderedDict()
        self._lock = threading.Lock()  # checks run on several threads in the service

    def __len__(self) -> int:
        return len(self._made)

    def get(self, catalog: Catalog, sha256: str) -> T | None:
        """What was made of the stored image ``sha256``; None where it cannot be read."""
        with self._lock:
            if sha256 in self._made:
                self._made.move_to_end(sha256)
                return self._made[sha256]
        try:
            made = self.make(decode(catalog.blob(sha256), max_side=DECODE_SIDE))
        except ScreenerError:  # a blob gone or no longer decodable: nothing to compare
            made = None
        with self._lock:
            self._made[sha256] = made
            while len(self._made) > self.capacity:
                self._made.popitem(last=False)
        return made

    def of_works(self, catalog: Catalog, work_ids: Sequence[str]) -> dict[str, list[tuple[int, T]]]:
        """What was made of each work's references, with their ids (one catalog query)."""
        found: dict[str, list[tuple[int, T]]] = {}
        for work_id, references in catalog.references_of_works(work_ids).items():
            for reference in references:
                made = self.get(catalog, reference.sha256)
                if made is not None:
                    found.setdefault(work_id, []).append((reference.id, made))
        return found
