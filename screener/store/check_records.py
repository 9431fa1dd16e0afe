"""What the service remembers about checks and notices, beside the catalog.

Every check is kept: its verdict, which works it matched (queryable by owner), and,
for an allowed check, its fingerprints, so that a later notice can re-screen outputs
already released. A check sent to review or blocked also keeps its image (as a
content-addressed blob): a reviewer who confirms it adds that image to the work.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from screener.store import clock
from screener.store import jobs as _jobs  # noqa: F401 - registers the jobs table with Base
from screener.store.catalog import Base, VectorColumns

CHECK_TABLES = (
    "checks",
    "check_matches",
    "check_fingerprints",
    "check_pictures",
    "notices",
    "reference_origins",
    "jobs",
)

now = clock.now  # the stores' one clock, still importable from here (the desk does)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()


class CheckRow(Base):
    __tablename__ = "checks"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    platform: Mapped[str] = mapped_column(String(200), index=True)
    key_id: Mapped[str] = mapped_column(String(64))
    user_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    input_sha256: Mapped[str] = mapped_column(String(64), index=True)
    decision: Mapped[str] = mapped_column(String(8), index=True)
    fused_score: Mapped[float] = mapped_column(Float)
    top_work_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    audit_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    review_status: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    review: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Set when a notice's re-screening found this (allowed) output now matches.
    rescreen: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CheckMatchRow(Base):
    """One flagged (or licensed) work of a check: lets a rights holder find its matches."""

    __tablename__ = "check_matches"
    check_id: Mapped[str] = mapped_column(
        ForeignKey("checks.id", ondelete="CASCADE"), primary_key=True
    )
    work_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    decision: Mapped[str] = mapped_column(String(8))
    fused_score: Mapped[float] = mapped_column(Float)
    licensed: Mapped[bool] = mapped_column(Boolean, default=False)


class CheckFingerprintRow(VectorColumns, Base):
    """An allowed check's fingerprint: searched by a notice through the check-fingerprint
    index (its row id is the index id), aged out after the retention period."""

    __tablename__ = "check_fingerprints"
    # Row ids are never reused (new catalogs): the check-fingerprint index keys by them.
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 - SQLAlchemy reads it
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(ForeignKey("checks.id", ondelete="CASCADE"), index=True)


class CheckPictureRow(Base):
    """The evidence picture of one matched work of a held check, drawn once and then only
    served: what a reviewer decided on stays what everyone sees later, even after the
    output itself (or a notice's image) joined the work's references."""

    __tablename__ = "check_pictures"
    check_id: Mapped[str] = mapped_column(
        ForeignKey("checks.id", ondelete="CASCADE"), primary_key=True
    )
    work_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)


class ReferenceOriginRow(Base):
    """Where a reference came from when it was not uploaded by its owner: a reviewer's
    confirmation of a check, or a notice. Keyed with the image's sha256 as well as the
    reference id, so an id used again after a removal does not inherit the origin."""

    __tablename__ = "reference_origins"
    reference_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    work_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "review" or "notice"
    source: Mapped[str] = mapped_column(String(40))  # the check or notice id


class NoticeRow(Base):
    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    filed_by: Mapped[str] = mapped_column(String(64))
    work_id: Mapped[str] = mapped_column(String(200), index=True)
    new_work: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text)
    check_ids: Mapped[list[str]] = mapped_column(JSON)
    # The notice's images (blobs, stored with the notice) as [sha256, file name] pairs: the
    # measures can be taken again from them after a crash.
    images: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    title: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    measures: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


@dataclass(frozen=True)
class CheckRecord:
    id: str
    created_at: str
    platform: str
    user_ref: str | None
    prompt: str | None
    decision: str
    fused_score: float
    top_work_id: str | None
    verdict: dict[str, Any]
    audit_seq: int | None
    review_status: str | None
    review: dict[str, Any] | None
    rescreen: dict[str, Any] | None

    @property
    def action(self) -> str:
        """What the platform must do with the output now, after any review and notice."""
        return action_of(self.decision, self.review_status, self.rescreen)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.id,
            "created_at": self.created_at,
            "platform": self.platform,
            "user_ref": self.user_ref,
            "decision": self.decision,
            "fused_score": self.fused_score,
            "top_work_id": self.top_work_id,
            "verdict": self.verdict,
            "audit_seq": self.audit_seq,
            "review_status": self.review_status,
            "review": self.review,
            "rescreen": self.rescreen,
            "action": self.action,
        }


# What a platform does with an output: the check's decision, then what a reviewer or a
# later notice made of it.
ACTIONS = {
    "publish": "may be published",
    "hold": "held until a person has reviewed it",
    "do_not_publish": "must not be published",
    "take_down": "was released, but a later notice matched it: take it down",
}


def action_of(decision: str, review_status: str | None, rescreen: dict[str, Any] | None) -> str:
    if decision == "block" or review_status == "confirmed":
        return "do_not_publish"
    if review_status == "pending":
        return "hold"
    if rescreen is not None and rescreen.get("decision") not in (None, "allow"):
        return "take_down"
    return "publish"


def check_record(row: CheckRow) -> CheckRecord:
    return CheckRecord(
        id=row.id,
        created_at=iso(row.created_at) or "",
        platform=row.platform,
        user_ref=row.user_ref,
        prompt=row.prompt,
        decision=row.decision,
        fused_score=row.fused_score,
        top_work_id=row.top_work_id,
        verdict=dict(row.verdict),
        audit_seq=row.audit_seq,
        review_status=row.review_status,
        review=dict(row.review) if row.review else None,
        rescreen=dict(row.rescreen) if row.rescreen else None,
    )


@dataclass(frozen=True)
class Notice:
    id: str
    created_at: str
    updated_at: str
    owner: str
    work_id: str
    new_work: bool
    description: str
    check_ids: tuple[str, ...]
    status: str
    history: tuple[dict[str, Any], ...]
    measures: dict[str, Any] | None
    reason: str | None
    # The notice's re-screening job as its reader may see it (`Job.to_dict`), if any.
    job: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "notice_id": self.id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "owner": self.owner,
            "work_id": self.work_id,
            "new_work": self.new_work,
            "description": self.description,
            "check_ids": list(self.check_ids),
            "status": self.status,
            "history": list(self.history),
            "measures": self.measures,
            "reason": self.reason,
            "job": self.job,
        }


def notice(row: NoticeRow) -> Notice:
    return Notice(
        id=row.id,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        owner=row.owner,
        work_id=row.work_id,
        new_work=row.new_work,
        description=row.description,
        check_ids=tuple(row.check_ids),
        status=row.status,
        history=tuple(row.history),
        measures=dict(row.measures) if row.measures else None,
        reason=row.reason,
    )
