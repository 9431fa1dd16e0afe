"""Background jobs: a notice's re-screening and the ageing-out of stored check
fingerprints run outside the request that asked for them, and their record is what the
API and the console show while they run.

A job is one row: queued, then running (with its progress), then done or failed. Its
result is written in the same transaction as the records it changes, so a crash leaves a
job either done with everything it found recorded, or still queued/running and taken up
again at the next start (never half-recorded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from screener.store.catalog import Base

KINDS = ("notice", "retention")
STATES = ("queued", "running", "done", "failed")
LIVE = ("queued", "running")


class JobRow(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    notice_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    # Who may read it besides operators: the owner of the noticed work (None: operators only).
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive datetimes
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    notice_id: str | None
    owner: str | None
    state: str
    done: int
    total: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    result: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.id,
            "kind": self.kind,
            "notice_id": self.notice_id,
            "state": self.state,
            "progress": {"done": self.done, "total": self.total},
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "result": self.result,
        }


def job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        notice_id=row.notice_id,
        owner=row.owner,
        state=row.state,
        done=row.done,
        total=row.total,
        created_at=_iso(row.created_at) or "",
        started_at=_iso(row.started_at),
        finished_at=_iso(row.finished_at),
        error=row.error,
        result=dict(row.result) if row.result else None,
    )
