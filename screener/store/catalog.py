"""The catalog: works, their reference images and fingerprints. The source of truth.

Every change to the set of fingerprints is appended to ``index_log`` in the same
transaction, so an index that saved its state at log position N catches up by replaying
the log after N. Fingerprint ids are never reused (SQLite AUTOINCREMENT; sequences
elsewhere), so a replayed id always means the same vector. Likewise every change to a
work's prompt terms (title, aliases, related terms) appends the work's id to
``term_log``, which the prompt automaton follows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from screener.core.errors import Conflict, NotFound, quote

SCHEMA_VERSION = "1"


def unavailable(work_id: str) -> str:
    """The one answer to creating a work under a taken id, whoever's work holds it."""
    return (
        f"work id {quote(work_id)} is not available: choose another (to add images to a work "
        "of yours, add references to it)"
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class WorkRow(Base):
    __tablename__ = "works"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    thresholds: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    references: Mapped[list[ReferenceRow]] = relationship(
        back_populates="work", cascade="all, delete-orphan", passive_deletes=True
    )


class LicenseeRow(Base):
    """A platform owner allowed to publish a work: its matches are reported, not blocked."""

    __tablename__ = "licensees"
    work_id: Mapped[str] = mapped_column(
        ForeignKey("works.id", ondelete="CASCADE"), primary_key=True
    )
    licensee: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class TerritoryRow(Base):
    """Where a work is protected (``scope`` "work"), where its own thresholds apply
    ("thresholds") or where a licensee's licence holds ("licensee", with ``licensee``).
    No row for a scope: everywhere. A table of its own, so databases made before it
    gain it by ``create_all`` without altering the works."""

    __tablename__ = "work_territories"
    work_id: Mapped[str] = mapped_column(
        ForeignKey("works.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    licensee: Mapped[str] = mapped_column(String(200), primary_key=True, default="")
    territory: Mapped[str] = mapped_column(String(2), primary_key=True)


class BlobRow(Base):
    """Reference image bytes, content-addressed: kept for re-fingerprinting and evidence."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ReferenceRow(Base):
    __tablename__ = "references"
    __table_args__ = (UniqueConstraint("work_id", "sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_id: Mapped[str] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_name: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    work: Mapped[WorkRow] = relationship(back_populates="references")


class HeldReferenceRow(Base):
    """A reference image held for an operator (see `screener.matching.registrability`): its bytes
    are kept (in ``blobs``), but it has no fingerprints, so no index ever sees it. Approval
    fingerprints it and adds it as a reference in one transaction that also deletes this
    row; rejection deletes the row."""

    __tablename__ = "held_references"
    __table_args__ = (UniqueConstraint("work_id", "sha256"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_id: Mapped[str] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class VectorColumns:
    """One fingerprint as stored: which signal and model made it, of which region."""

    signal: Mapped[str] = mapped_column(String(32), index=True)
    spec_id: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(32))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)


class FingerprintRow(VectorColumns, Base):
    __tablename__ = "fingerprints"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference_id: Mapped[int] = mapped_column(
        ForeignKey("references.id", ondelete="CASCADE"), index=True
    )


class LocalFeatureRow(Base):
    """The keypoints and descriptors of one reference image (one row per background it
    was seen over). Not indexed: read for the few candidate works a check verifies."""

    __tablename__ = "local_features"
    # Row ids are never reused: caches and the descriptor index key keypoint sets by them.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference_id: Mapped[int] = mapped_column(
        ForeignKey("references.id", ondelete="CASCADE"), index=True
    )
    spec_id: Mapped[str] = mapped_column(String(200), index=True)
    variant: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    points: Mapped[bytes] = mapped_column(LargeBinary)
    descriptors: Mapped[bytes] = mapped_column(LargeBinary)


class IndexLogRow(Base):
    __tablename__ = "index_log"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    signal: Mapped[str] = mapped_column(String(32), index=True)
    spec_id: Mapped[str] = mapped_column(String(200))
    fingerprint_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(8))


class RelatedTermRow(Base):
    """A descriptive term of a work (weaker prompt evidence than a name). A table of its
    own, not a column of ``works``, so databases made before it open unchanged."""

    __tablename__ = "related_terms"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_id: Mapped[str] = mapped_column(ForeignKey("works.id", ondelete="CASCADE"), index=True)
    term: Mapped[str] = mapped_column(Text)


class TermLogRow(Base):
    """A work whose prompt terms changed (or that was removed), in order."""

    __tablename__ = "term_log"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_id: Mapped[str] = mapped_column(String(200))
    op: Mapped[str] = mapped_column(String(8))


class MetaRow(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


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


def _stored_local(row: LocalFeatureRow, work_id: str) -> StoredLocalFeatures:
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


def _keep_blob(session: Session, sha256: str, data: bytes) -> None:
    """Store an image's bytes once, however many references or held references name it."""
    if session.get(BlobRow, sha256) is None:
        session.add(BlobRow(sha256=sha256, data=data))


_Image = TypeVar("_Image", NewReference, NewHeld)


def _unseen(session: Session, images: Iterable[_Image], known: set[str]) -> Iterator[_Image]:
    """The images whose bytes the work does not hold yet (``known``: their sha256, updated
    as they go), each with its bytes stored."""
    for image in images:
        if image.sha256 in known:
            continue
        known.add(image.sha256)
        _keep_blob(session, image.sha256, image.data)
        yield image


def _image_columns(work_id: str, image: NewReference | NewHeld) -> dict[str, Any]:
    return {
        "work_id": work_id,
        "sha256": image.sha256,
        "source_name": image.source_name,
        "format": image.format,
        "width": image.width,
        "height": image.height,
    }


def _local_rows(reference_id: int, local: Iterable[NewLocalFeatures]) -> list[LocalFeatureRow]:
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Catalog:
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

    # works -------------------------------------------------------------------------------

    def register(
        self,
        work_id: str,
        *,
        title: str,
        owner: str,
        aliases: Sequence[str],
        references: Sequence[NewReference],
        related_terms: Sequence[str] = (),
        create_only: bool = False,
        must_exist: bool = False,
        hook: RegisterHook | None = None,
        held: Sequence[NewHeld] = (),
        release: int | None = None,
    ) -> tuple[Work, list[int], list[int]]:
        """Create the work (or extend it) and add references, all in one transaction.

        References already on the work (same sha256) are skipped, and so are ``held``
        ones already on it or already held. ``release``: the held reference being
        approved, deleted in the same transaction (NotFound once it is gone). Returns the
        work, the ids of the references added and of those held.
        """
        added: list[int] = []
        held_ids: list[int] = []
        with Session(self.engine) as session, session.begin():
            if release is not None:
                gone = session.execute(
                    delete(HeldReferenceRow).where(
                        HeldReferenceRow.id == release, HeldReferenceRow.work_id == work_id
                    )
                )
                if getattr(gone, "rowcount", 0) != 1:
                    raise NotFound(f"work {work_id!r} has no held reference {release}")
            row = session.get(WorkRow, work_id)
            if row is None and must_exist:
                raise NotFound(f"no work {work_id!r}")
            if row is None:
                row = WorkRow(id=work_id, title=title, owner=owner, aliases=list(aliases))
                session.add(row)
                session.flush()
                session.add_all(
                    RelatedTermRow(work_id=work_id, term=t) for t in dict.fromkeys(related_terms)
                )
                session.add(TermLogRow(work_id=work_id, op="set"))
            elif create_only:
                raise Conflict(unavailable(work_id))
            known = set(
                session.scalars(select(ReferenceRow.sha256).where(ReferenceRow.work_id == work_id))
            )
            for ref in _unseen(session, references, known):
                ref_row = ReferenceRow(**_image_columns(work_id, ref), byte_size=len(ref.data))
                session.add(ref_row)
                session.flush()
                added.append(ref_row.id)
                fp_rows = [
                    FingerprintRow(
                        reference_id=ref_row.id,
                        signal=fp.signal,
                        spec_id=fp.spec_id,
                        region=fp.region,
                        vector=fp.vector,
                        quality=fp.quality,
                    )
                    for fp in ref.fingerprints
                ]
                session.add_all(fp_rows)
                session.add_all(_local_rows(ref_row.id, ref.local))
                session.flush()
                session.add_all(
                    IndexLogRow(signal=f.signal, spec_id=f.spec_id, fingerprint_id=f.id, op="add")
                    for f in fp_rows
                )
            held_ids = self._hold(session, work_id, held, known)
            session.flush()
            work = self._query_works(session, WorkRow.id == row.id)[0]
            if hook is not None:
                hook(session, work, added, held_ids)
        return work, added, held_ids

    @staticmethod
    def _hold(
        session: Session, work_id: str, held: Sequence[NewHeld], known: set[str]
    ) -> list[int]:
        """Store references held for an operator (no fingerprints: no index sees them)."""
        known = known | set(
            session.scalars(
                select(HeldReferenceRow.sha256).where(HeldReferenceRow.work_id == work_id)
            )
        )
        ids: list[int] = []
        for ref in _unseen(session, held, known):
            row = HeldReferenceRow(**_image_columns(work_id, ref), findings=list(ref.findings))
            session.add(row)
            session.flush()
            ids.append(row.id)
        return ids

    def held(
        self, *, work_id: str | None = None, owner: str | None = None, held_id: int | None = None
    ) -> list[HeldReference]:
        """References held for an operator, oldest first (of one work, owner or id)."""
        query = select(HeldReferenceRow, WorkRow.owner).join(
            WorkRow, WorkRow.id == HeldReferenceRow.work_id
        )
        if work_id is not None:
            query = query.where(HeldReferenceRow.work_id == work_id)
        if owner is not None:
            query = query.where(WorkRow.owner == owner)
        if held_id is not None:
            query = query.where(HeldReferenceRow.id == held_id)
        with Session(self.engine) as session:
            rows = session.execute(query.order_by(HeldReferenceRow.id)).all()
        return [
            HeldReference(
                r.id,
                r.work_id,
                work_owner,
                r.sha256,
                r.source_name,
                r.format,
                r.width,
                r.height,
                tuple(r.findings or ()),
                r.created_at,
            )
            for r, work_owner in rows
        ]

    def reject_held(self, work_id: str, held_id: int, hook: RemoveHook | None = None) -> None:
        """Drop a held reference (its bytes stay with the other blobs)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(HeldReferenceRow, held_id)
            if row is None or row.work_id != work_id:
                raise NotFound(f"work {work_id!r} has no held reference {held_id}")
            session.delete(row)
            if hook is not None:
                hook(session, 0)

    def update_work(
        self,
        work_id: str,
        *,
        title: str | None = None,
        aliases: Sequence[str] | None = None,
        thresholds: dict[str, float] | None = _UNSET,
        licensees: Sequence[str] | None = None,
        territories: dict[tuple[str, str], Sequence[str]] | None = None,
        related_terms: Sequence[str] | None = None,
        hook: UpdateHook | None = None,
    ) -> Work:
        """Change a work's metadata; arguments left out stay as they are
        (``thresholds=None`` clears the work's own thresholds). ``territories`` replaces
        the territories of each (scope, licensee) it names (an empty list: everywhere)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(WorkRow, work_id)
            if row is None:
                raise NotFound(f"no work {work_id!r}")
            if title is not None:
                row.title = title
            if aliases is not None:
                row.aliases = list(aliases)
            if related_terms is not None:
                session.execute(delete(RelatedTermRow).where(RelatedTermRow.work_id == work_id))
                session.add_all(
                    RelatedTermRow(work_id=work_id, term=t) for t in dict.fromkeys(related_terms)
                )
            if title is not None or aliases is not None or related_terms is not None:
                session.add(TermLogRow(work_id=work_id, op="set"))
            if thresholds is not _UNSET:
                row.thresholds = dict(thresholds) if thresholds else None
            if licensees is not None:
                session.execute(delete(LicenseeRow).where(LicenseeRow.work_id == work_id))
                session.add_all(
                    LicenseeRow(work_id=work_id, licensee=name) for name in dict.fromkeys(licensees)
                )
                session.execute(  # a licence withdrawn takes its territories along
                    delete(TerritoryRow).where(
                        TerritoryRow.work_id == work_id,
                        TerritoryRow.scope == "licensee",
                        TerritoryRow.licensee.not_in(list(licensees)),
                    )
                )
            for (scope, licensee), codes in (territories or {}).items():
                session.execute(
                    delete(TerritoryRow).where(
                        TerritoryRow.work_id == work_id,
                        TerritoryRow.scope == scope,
                        TerritoryRow.licensee == licensee,
                    )
                )
                session.add_all(
                    TerritoryRow(work_id=work_id, scope=scope, licensee=licensee, territory=code)
                    for code in dict.fromkeys(codes)
                )
            session.flush()
            work = self._query_works(session, WorkRow.id == work_id)[0]
            if hook is not None:
                hook(session, work)
        return work

    def remove_work(self, work_id: str, hook: RemoveHook | None = None) -> int:
        """Delete a work with its references and fingerprints; returns fingerprints removed."""
        with Session(self.engine) as session, session.begin():
            row = session.get(WorkRow, work_id)
            if row is None:
                raise NotFound(f"no work {work_id!r}")
            ref_ids = select(ReferenceRow.id).where(ReferenceRow.work_id == work_id)
            removed = self._log_removal(session, FingerprintRow.reference_id.in_(ref_ids))
            session.execute(delete(FingerprintRow).where(FingerprintRow.reference_id.in_(ref_ids)))
            session.execute(
                delete(LocalFeatureRow).where(LocalFeatureRow.reference_id.in_(ref_ids))
            )
            session.execute(delete(ReferenceRow).where(ReferenceRow.work_id == work_id))
            session.execute(delete(HeldReferenceRow).where(HeldReferenceRow.work_id == work_id))
            session.execute(delete(LicenseeRow).where(LicenseeRow.work_id == work_id))
            session.execute(delete(TerritoryRow).where(TerritoryRow.work_id == work_id))
            session.execute(delete(RelatedTermRow).where(RelatedTermRow.work_id == work_id))
            session.add(TermLogRow(work_id=work_id, op="remove"))
            session.delete(row)
            if hook is not None:
                hook(session, removed)
        return removed

    def remove_reference(
        self, work_id: str, reference_id: int, hook: RemoveHook | None = None
    ) -> int:
        with Session(self.engine) as session, session.begin():
            ref = session.get(ReferenceRow, reference_id)
            if ref is None or ref.work_id != work_id:
                raise NotFound(f"work {work_id!r} has no reference {reference_id}")
            removed = self._log_removal(session, FingerprintRow.reference_id == reference_id)
            session.execute(
                delete(FingerprintRow).where(FingerprintRow.reference_id == reference_id)
            )
            session.execute(
                delete(LocalFeatureRow).where(LocalFeatureRow.reference_id == reference_id)
            )
            session.delete(ref)
            if hook is not None:
                hook(session, removed)
        return removed

    @staticmethod
    def _log_removal(session: Session, condition: Any) -> int:
        rows = session.execute(
            select(FingerprintRow.id, FingerprintRow.signal, FingerprintRow.spec_id).where(
                condition
            )
        ).all()
        session.add_all(
            IndexLogRow(signal=signal, spec_id=spec, fingerprint_id=fid, op="remove")
            for fid, signal, spec in rows
        )
        return len(rows)

    @staticmethod
    def _query_works(
        session: Session,
        condition: Any = None,
        order: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Work]:
        """Works with their reference counts, in one query (no count per work)."""
        counts = (
            select(ReferenceRow.work_id, func.count().label("n"))
            .group_by(ReferenceRow.work_id)
            .subquery()
        )
        query = select(WorkRow, counts.c.n).outerjoin(counts, counts.c.work_id == WorkRow.id)
        if condition is not None:
            query = query.where(condition)
        if order:
            query = query.order_by(WorkRow.id)
        query = query.offset(offset) if offset else query
        query = query.limit(limit) if limit is not None else query
        rows = session.execute(query).all()
        licensees: dict[str, list[str]] = {}
        ids = [row.id for row, _ in rows]
        for start in range(0, len(ids), 900):  # keep under SQLite's variable limit
            for work_id, name in session.execute(
                select(LicenseeRow.work_id, LicenseeRow.licensee)
                .where(LicenseeRow.work_id.in_(ids[start : start + 900]))
                .order_by(LicenseeRow.licensee)
            ):
                licensees.setdefault(work_id, []).append(name)
        places: dict[tuple[str, str], list[str]] = {}
        licensed_in: dict[str, dict[str, list[str]]] = {}
        for start in range(0, len(ids), 900):
            for work_id, scope, licensee, territory in session.execute(
                select(
                    TerritoryRow.work_id,
                    TerritoryRow.scope,
                    TerritoryRow.licensee,
                    TerritoryRow.territory,
                )
                .where(TerritoryRow.work_id.in_(ids[start : start + 900]))
                .order_by(TerritoryRow.territory)
            ):
                if scope == "licensee":
                    licensed_in.setdefault(work_id, {}).setdefault(licensee, []).append(territory)
                else:
                    places.setdefault((work_id, scope), []).append(territory)
        related = Catalog._related(session, ids)
        return [
            Work(
                id=row.id,
                title=row.title,
                owner=row.owner,
                aliases=tuple(row.aliases or ()),
                thresholds=dict(row.thresholds) if row.thresholds else None,
                reference_count=int(n or 0),
                created_at=row.created_at,
                licensees=tuple(licensees.get(row.id, ())),
                territories=tuple(places.get((row.id, "work"), ())),
                threshold_territories=tuple(places.get((row.id, "thresholds"), ())),
                licensee_territories={
                    name: tuple(found) for name, found in licensed_in.get(row.id, {}).items()
                },
                related_terms=tuple(related.get(row.id, ())),
            )
            for row, n in rows
        ]

    @staticmethod
    def _related(session: Session, ids: Sequence[str] | None) -> dict[str, list[str]]:
        """Each work's related terms, in the order given (of ``ids`` only, or all)."""
        query = select(RelatedTermRow.work_id, RelatedTermRow.term).order_by(RelatedTermRow.id)
        found: dict[str, list[str]] = {}
        if ids is None:
            for work_id, term in session.execute(query):
                found.setdefault(work_id, []).append(term)
            return found
        for start in range(0, len(ids), 900):  # keep under SQLite's variable limit
            for work_id, term in session.execute(
                query.where(RelatedTermRow.work_id.in_(ids[start : start + 900]))
            ):
                found.setdefault(work_id, []).append(term)
        return found

    def get_work(self, work_id: str) -> Work:
        with Session(self.engine) as session:
            found = self._query_works(session, WorkRow.id == work_id)
        if not found:
            raise NotFound(f"no work {work_id!r}")
        return found[0]

    def works(self, work_ids: Iterable[str]) -> dict[str, Work]:
        """The works among ``work_ids`` that exist, by id."""
        ids = list(dict.fromkeys(work_ids))
        with Session(self.engine) as session:
            return {
                w.id: w
                for start in range(0, len(ids), 900)  # keep under SQLite's variable limit
                for w in self._query_works(session, WorkRow.id.in_(ids[start : start + 900]))
            }

    def list_works(
        self, offset: int = 0, limit: int | None = None, owner: str | None = None
    ) -> list[Work]:
        condition = None if owner is None else WorkRow.owner == owner
        with Session(self.engine) as session:
            return self._query_works(session, condition, order=True, offset=offset, limit=limit)

    def count_works(self, owner: str | None = None) -> int:
        query = select(func.count()).select_from(WorkRow)
        if owner is not None:
            query = query.where(WorkRow.owner == owner)
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)

    def keywords(self) -> dict[str, tuple[str, ...]]:
        """Each work's title and aliases (the per-check load that the prompt automaton
        replaced; the prompt benchmark times it for comparison)."""
        with Session(self.engine) as session:
            rows = session.execute(select(WorkRow.id, WorkRow.title, WorkRow.aliases)).all()
        return {wid: (title, *(aliases or ())) for wid, title, aliases in rows}

    def prompt_terms(self, work_ids: Iterable[str] | None = None) -> list[PromptTerms]:
        """The prompt terms of every work, or of those among ``work_ids`` that exist."""
        ids = None if work_ids is None else list(dict.fromkeys(work_ids))
        columns = select(WorkRow.id, WorkRow.title, WorkRow.owner, WorkRow.aliases)
        with Session(self.engine) as session:
            if ids is None:
                rows = list(session.execute(columns).all())
            else:
                rows = []
                for start in range(0, len(ids), 900):  # keep under SQLite's variable limit
                    chunk = ids[start : start + 900]
                    rows += session.execute(columns.where(WorkRow.id.in_(chunk))).all()
            related = self._related(session, ids)
        return [
            PromptTerms(wid, title, owner, (title, *(aliases or ())), tuple(related.get(wid, ())))
            for wid, title, owner, aliases in rows
        ]

    def term_high_water(self) -> int:
        """The last position of the prompt-term log (0 when empty)."""
        with self.engine.connect() as connection:  # plain SQL: asked before every prompt check
            found = connection.exec_driver_sql("SELECT max(seq) FROM term_log").scalar()
        return int(found or 0)

    def term_changes(self, after: int) -> tuple[list[str], int]:
        """The works whose prompt terms changed after log position ``after``, and the
        position read up to."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(TermLogRow.seq, TermLogRow.work_id)
                .where(TermLogRow.seq > after)
                .order_by(TermLogRow.seq)
            ).all()
        if not rows:
            return [], after
        return list(dict.fromkeys(w for _, w in rows)), int(rows[-1][0])

    def references(self, work_id: str) -> list[Reference]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(ReferenceRow)
                .where(ReferenceRow.work_id == work_id)
                .order_by(ReferenceRow.id)
            )
            return [
                Reference(r.id, r.work_id, r.sha256, r.source_name, r.format, r.width, r.height)
                for r in rows
            ]

    def blob(self, sha256: str) -> bytes:
        with Session(self.engine) as session:
            row = session.get(BlobRow, sha256)
            if row is None:
                raise NotFound(f"no stored image {sha256}")
            return row.data

    # fingerprints and the log ----------------------------------------------------------------

    def high_water(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.max(IndexLogRow.seq))) or 0)

    def log_since(self, signal: str, spec_id: str, seq: int) -> list[LogEntry]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(IndexLogRow.seq, IndexLogRow.fingerprint_id, IndexLogRow.op)
                .where(
                    IndexLogRow.signal == signal,
                    IndexLogRow.spec_id == spec_id,
                    IndexLogRow.seq > seq,
                )
                .order_by(IndexLogRow.seq)
            ).all()
        return [LogEntry(s, f, o) for s, f, o in rows]

    def _fingerprints(self, condition: Any) -> list[StoredFingerprint]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(FingerprintRow, ReferenceRow.work_id)
                .join(ReferenceRow, FingerprintRow.reference_id == ReferenceRow.id)
                .where(condition)
                .order_by(FingerprintRow.id)
            ).all()
        return [
            StoredFingerprint(
                f.id, work_id, f.reference_id, f.signal, f.spec_id, f.region, f.vector, f.quality
            )
            for f, work_id in rows
        ]

    def fingerprints_by_id(self, ids: Iterable[int]) -> list[StoredFingerprint]:
        id_list = sorted(set(ids))
        found: list[StoredFingerprint] = []
        for start in range(0, len(id_list), 900):  # keep under SQLite's variable limit
            found += self._fingerprints(FingerprintRow.id.in_(id_list[start : start + 900]))
        return found

    def owners(self, ids: Iterable[int]) -> dict[int, tuple[str, int, str]]:
        """(work id, reference id, region) of each fingerprint id still in the catalog."""
        id_list = sorted(set(ids))
        found: dict[int, tuple[str, int, str]] = {}
        with Session(self.engine) as session:
            for start in range(0, len(id_list), 900):  # keep under SQLite's variable limit
                rows = session.execute(
                    select(
                        FingerprintRow.id,
                        ReferenceRow.work_id,
                        FingerprintRow.reference_id,
                        FingerprintRow.region,
                    )
                    .join(ReferenceRow, FingerprintRow.reference_id == ReferenceRow.id)
                    .where(FingerprintRow.id.in_(id_list[start : start + 900]))
                ).all()
                found.update({int(f): (w, int(r), g) for f, w, r, g in rows})
        return found

    def fingerprints_of_works(
        self, work_ids: Iterable[str], signal: str, spec_id: str
    ) -> list[StoredFingerprint]:
        return self._fingerprints(
            ReferenceRow.work_id.in_(list(work_ids))
            & (FingerprintRow.signal == signal)
            & (FingerprintRow.spec_id == spec_id)
        )

    # local features ----------------------------------------------------------------------

    def local_features_of_works(
        self, work_ids: Iterable[str], spec_id: str
    ) -> list[StoredLocalFeatures]:
        return self.local_features_by_rows(self.local_feature_rows(spec_id, work_ids=work_ids))

    def local_feature_rows(
        self, spec_id: str, *, work_ids: Iterable[str] | None = None, after: int = 0
    ) -> dict[int, str]:
        """The row id of every stored keypoint set of ``spec_id`` (of ``work_ids`` only,
        past row ``after`` only), with its work. No keypoints are read: a check reads
        only the sets it has not cached, and the descriptor index compares rows."""
        query = (
            select(LocalFeatureRow.id, ReferenceRow.work_id)
            .join(ReferenceRow, LocalFeatureRow.reference_id == ReferenceRow.id)
            .where(LocalFeatureRow.spec_id == spec_id, LocalFeatureRow.id > after)
            .order_by(LocalFeatureRow.id)
        )
        if work_ids is not None:
            query = query.where(ReferenceRow.work_id.in_(list(work_ids)))
        with Session(self.engine) as session:
            rows = session.execute(query).all()
        return {int(i): str(w) for i, w in rows}

    def local_features_by_rows(self, row_ids: Iterable[int]) -> list[StoredLocalFeatures]:
        """The keypoint sets stored in ``row_ids`` (those still there), in row order."""
        wanted = sorted(set(row_ids))
        found: list[StoredLocalFeatures] = []
        for start in range(0, len(wanted), 500):
            with Session(self.engine) as session:
                rows = session.execute(
                    select(LocalFeatureRow, ReferenceRow.work_id)
                    .join(ReferenceRow, LocalFeatureRow.reference_id == ReferenceRow.id)
                    .where(LocalFeatureRow.id.in_(wanted[start : start + 500]))
                    .order_by(LocalFeatureRow.id)
                ).all()
            found.extend(_stored_local(r, work_id) for r, work_id in rows)
        return found

    def references_without_local(self, spec_id: str) -> list[tuple[int, str]]:
        """(reference id, image sha256) of references with no local features of
        ``spec_id``: registered before local features, or under another spec."""
        with Session(self.engine) as session:
            has = select(LocalFeatureRow.reference_id).where(LocalFeatureRow.spec_id == spec_id)
            rows = session.execute(
                select(ReferenceRow.id, ReferenceRow.sha256)
                .where(ReferenceRow.id.not_in(has))
                .order_by(ReferenceRow.id)
            ).all()
        return [(int(i), str(h)) for i, h in rows]

    def add_local(self, reference_id: int, local: Sequence[NewLocalFeatures]) -> bool:
        """Store a reference's local features (a backfill); False when the reference
        was removed meanwhile or already has them."""
        with Session(self.engine) as session, session.begin():
            if session.get(ReferenceRow, reference_id) is None:
                return False
            specs = {f.spec_id for f in local}
            present = session.scalar(
                select(func.count()).where(
                    LocalFeatureRow.reference_id == reference_id,
                    LocalFeatureRow.spec_id.in_(specs),
                )
            )
            if present:
                return False
            session.add_all(_local_rows(reference_id, local))
        return True

    def iter_fingerprints(
        self, signal: str, spec_id: str, batch: int = 10_000
    ) -> Iterator[list[tuple[int, bytes]]]:
        """Every (id, vector) of one signal and spec, in id order, in batches."""
        last = 0
        while True:
            with Session(self.engine) as session:
                rows = session.execute(
                    select(FingerprintRow.id, FingerprintRow.vector)
                    .where(
                        FingerprintRow.signal == signal,
                        FingerprintRow.spec_id == spec_id,
                        FingerprintRow.id > last,
                    )
                    .order_by(FingerprintRow.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield [(int(i), bytes(v)) for i, v in rows]
            last = int(rows[-1][0])

    def fingerprint_ids(self, signal: str, spec_id: str) -> list[int]:
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(FingerprintRow.id)
                    .where(FingerprintRow.signal == signal, FingerprintRow.spec_id == spec_id)
                    .order_by(FingerprintRow.id)
                )
            )

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
