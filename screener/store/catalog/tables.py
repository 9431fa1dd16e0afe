"""The catalog's tables (SQLAlchemy rows) and the engine that opens them.

Kept apart from the code that reads and writes them, so that the schema can be read in one
place; ``check_records`` and the other stores add their tables to the same ``Base``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

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
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from screener.store.clock import now as _now

SCHEMA_VERSION = "1"


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
