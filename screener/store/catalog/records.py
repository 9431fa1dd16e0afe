"""What the catalog takes and gives back: plain frozen dataclasses, and the hooks a write
calls inside its transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from screener.store.catalog.tables import LocalFeatureRow

# Called last inside a write's transaction (the audit record of the change goes there, so
# the change and its record commit or roll back together).
# A registration's hook gets the work, the references added and those held for an operator.
RegisterHook = Callable[[Session, "Work", list[int], list[int]], None]
RemoveHook = Callable[[Session, int], None]
UpdateHook = Callable[[Session, "Work"], None]

_UNSET: Any = object()


@dataclass(frozen=True)
class NewFingerprint:
    signal: str
    spec_id: str
    region: str
    vector: bytes
    quality: float | None


@dataclass(frozen=True)
class NewLocalFeatures:
    """Local features of a reference, in the pixels of its ``width`` x ``height`` copy."""

    spec_id: str
    variant: str  # the background it was seen over ("white" for the image as decoded)
    width: int
    height: int
    count: int
    points: bytes
    descriptors: bytes


@dataclass(frozen=True)
class NewReference:
    sha256: str
    source_name: str
    format: str
    width: int
    height: int
    data: bytes
    fingerprints: tuple[NewFingerprint, ...]
    local: tuple[NewLocalFeatures, ...] = ()


@dataclass(frozen=True)
class NewHeld:
    """A reference to hold for an operator, with why (`registrability.Finding` dicts)."""

    sha256: str
    source_name: str
    format: str
    width: int
    height: int
    data: bytes
    findings: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, ref: NewReference, *findings: dict[str, Any]) -> NewHeld:
        """The reference ``ref``, held with why."""
        return cls(
            ref.sha256, ref.source_name, ref.format, ref.width, ref.height, ref.data, findings
        )


@dataclass(frozen=True)
class HeldReference:
    id: int
    work_id: str
    owner: str
    sha256: str
    source_name: str
    format: str
    width: int
    height: int
    findings: tuple[dict[str, Any], ...]
    created_at: dt.datetime


@dataclass(frozen=True)
class Work:
    id: str
    title: str
    owner: str
    aliases: tuple[str, ...]
    thresholds: dict[str, float] | None
    reference_count: int
    created_at: dt.datetime
    licensees: tuple[str, ...] = ()
    # ISO 3166-1 alpha-2 codes; empty: everywhere (see screener/core/territory.py).
    territories: tuple[str, ...] = ()
    threshold_territories: tuple[str, ...] = ()
    licensee_territories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    related_terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromptTerms:
    """A work's terms for prompt screening."""

    work_id: str
    title: str
    owner: str
    names: tuple[str, ...]  # the title, then the aliases
    related: tuple[str, ...]


@dataclass(frozen=True)
class Reference:
    id: int
    work_id: str
    sha256: str
    source_name: str
    format: str
    width: int
    height: int


@dataclass(frozen=True)
class StoredFingerprint:
    id: int
    work_id: str
    reference_id: int
    signal: str
    spec_id: str
    region: str
    vector: bytes
    quality: float | None


@dataclass(frozen=True)
class StoredLocalFeatures:
    work_id: str
    reference_id: int
    variant: str
    width: int
    height: int
    points: bytes
    descriptors: bytes
    row_id: int = 0  # the catalog row these keypoints are stored in


@dataclass(frozen=True)
class LogEntry:
    seq: int
    fingerprint_id: int
    op: str


def stored_local(row: LocalFeatureRow, work_id: str) -> StoredLocalFeatures:
    return StoredLocalFeatures(
        work_id,
        row.reference_id,
        row.variant,
        row.width,
        row.height,
        row.points,
        row.descriptors,
        row.id,
    )


def local_rows(reference_id: int, local: Iterable[NewLocalFeatures]) -> list[LocalFeatureRow]:
    return [
        LocalFeatureRow(
            reference_id=reference_id,
            spec_id=f.spec_id,
            variant=f.variant,
            width=f.width,
            height=f.height,
            count=f.count,
            points=f.points,
            descriptors=f.descriptors,
        )
        for f in local
    ]
