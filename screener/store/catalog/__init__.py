"""The catalog: works, their reference images and fingerprints. The source of truth.

Every change to the set of fingerprints is appended to ``index_log`` in the same
transaction, so an index that saved its state at log position N catches up by replaying
the log after N. Fingerprint ids are never reused (SQLite AUTOINCREMENT; sequences
elsewhere), so a replayed id always means the same vector. Likewise every change to a
work's prompt terms (title, aliases, related terms) appends the work's id to
``term_log``, which the prompt automaton follows.

Cut by concept: ``tables`` (the schema), ``records`` (what goes in and comes out),
``works`` (writes), ``queries`` (reads of works) and ``fingerprints`` (fingerprints, local
features, the log). :class:`Catalog` joins them; every public name is importable from here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screener.store.catalog.fingerprints import FingerprintQueries
from screener.store.catalog.queries import WorkQueries
from screener.store.catalog.records import (
    HeldReference,
    LogEntry,
    NewFingerprint,
    NewHeld,
    NewLocalFeatures,
    NewReference,
    PromptTerms,
    Reference,
    RegisterHook,
    RemoveHook,
    StoredFingerprint,
    StoredLocalFeatures,
    UpdateHook,
    Work,
)
from screener.store.catalog.tables import (
    SCHEMA_VERSION,
    Base,
    BlobRow,
    FingerprintRow,
    HeldReferenceRow,
    IndexLogRow,
    LicenseeRow,
    LocalFeatureRow,
    MetaRow,
    ReferenceRow,
    RelatedTermRow,
    TermLogRow,
    TerritoryRow,
    VectorColumns,
    WorkRow,
    make_engine,
)
from screener.store.catalog.works import WorkWrites, unavailable


class Catalog(WorkWrites, WorkQueries, FingerprintQueries):
    """Transactional access to works, references, fingerprints and the index log."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        with Session(self.engine) as session, session.begin():
            if session.get(MetaRow, "schema_version") is None:
                session.add(MetaRow(key="schema_version", value=SCHEMA_VERSION))

    def close(self) -> None:
        self.engine.dispose()

    def meta(self, key: str) -> str | None:
        with Session(self.engine) as session:
            row = session.get(MetaRow, key)
            return None if row is None else row.value

    def describe(self) -> dict[str, Any]:
        with Session(self.engine) as session:
            per_signal = session.execute(
                select(FingerprintRow.signal, FingerprintRow.spec_id, func.count()).group_by(
                    FingerprintRow.signal, FingerprintRow.spec_id
                )
            ).all()
        return {
            "works": self.count_works(),
            "high_water": self.high_water(),
            "fingerprints": {f"{s} ({spec})": int(n) for s, spec, n in per_signal},
        }


__all__ = [
    "SCHEMA_VERSION",
    "Base",
    "BlobRow",
    "Catalog",
    "FingerprintRow",
    "HeldReference",
    "HeldReferenceRow",
    "IndexLogRow",
    "LicenseeRow",
    "LocalFeatureRow",
    "LogEntry",
    "MetaRow",
    "NewFingerprint",
    "NewHeld",
    "NewLocalFeatures",
    "NewReference",
    "PromptTerms",
    "Reference",
    "ReferenceRow",
    "RegisterHook",
    "RelatedTermRow",
    "RemoveHook",
    "StoredFingerprint",
    "StoredLocalFeatures",
    "TermLogRow",
    "TerritoryRow",
    "UpdateHook",
    "VectorColumns",
    "Work",
    "WorkRow",
    "make_engine",
    "unavailable",
]
