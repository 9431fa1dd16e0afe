"""The `VectorIndex` protocol: int64 ids in, nearest neighbours out.

Two metrics exist: ``"ip"`` (inner product over float32 vectors, higher is closer) and
``"hamming"`` (over bit vectors packed into uint8 rows, lower is closer). Every
implementation answers in the same shape so that the screener never needs to know which
one it talks to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Metric = Literal["ip", "hamming"]

IdArray = npt.NDArray[np.int64]


class IndexError_(Exception):  # noqa: N801 (the name is part of the API)
    """Base class for failures of an index (bad shapes, unreadable files, spec mismatch)."""


class IndexSpecMismatch(IndexError_):
    """An index file was made for another fingerprint spec, dimension or metric."""


class IndexCorrupt(IndexError_):
    """An index file is missing, truncated or fails its checksum."""


@dataclass(frozen=True)
class IndexSpec:
    """What an index holds: which fingerprinter's vectors, of what size and metric.

    ``dim`` counts floats for ``"ip"`` and bits for ``"hamming"``.
    """

    spec_id: str
    dim: int
    metric: Metric


@dataclass(frozen=True)
class Neighbours:
    """Search results for a batch of queries.

    ``ids[i]`` and ``scores[i]`` list query ``i``'s hits, best first. Scores are inner
    products for ``"ip"`` and Hamming distances for ``"hamming"``.
    """

    ids: list[IdArray]
    scores: list[npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Manifest:
    """The JSON document saved beside every index file."""

    spec: IndexSpec
    kind: str
    count: int
    high_water: int
    checksum: str
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class VectorIndex(Protocol):
    """A mutable set of (id, vector) pairs searchable by k and/or radius."""

    @property
    def spec(self) -> IndexSpec: ...

    @property
    def kind(self) -> str:
        """A short name of the implementation and its structure, e.g. ``faiss:HNSW32``."""
        ...

    def add(self, ids: IdArray, vectors: npt.NDArray[Any]) -> None:
        """Add vectors; an id already present is replaced."""
        ...

    def remove(self, ids: IdArray) -> int:
        """Remove ids (absent ones are ignored); return how many were removed."""
        ...

    def search(
        self, queries: npt.NDArray[Any], k: int | None = None, radius: float | None = None
    ) -> Neighbours:
        """Nearest neighbours of each query.

        With ``k`` only: the k best. With ``radius`` only: every hit within it (inner product
        >= radius, or Hamming distance <= radius). With both: at most k hits within radius.
        """
        ...

    def ids(self) -> IdArray:
        """Every id present, sorted."""
        ...

    def save(self, path: Path, high_water: int) -> Manifest:
        """Write the index and its manifest atomically (temporary file, then rename)."""
        ...

    def __len__(self) -> int: ...
