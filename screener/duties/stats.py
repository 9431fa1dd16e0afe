"""Counts for the operators' dashboard, read from the checks and the catalog."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screener.core.policy import Decision
from screener.store.check_records import CheckMatchRow, CheckRow, iso, now

MAX_DAYS = 366


@dataclass(frozen=True)
class Dashboard:
    days: tuple[str, ...]  # ISO dates, oldest first
    per_day: dict[str, tuple[int, ...]]  # decision -> a count per day
    top_works: tuple[tuple[str, int], ...]  # (work id, flagged checks), most first
    backlog: int
    oldest_pending: str | None
    total_checks: int


def dashboard(engine: Engine, days: int = 14, top: int = 10) -> Dashboard:
    """Checks per decision per UTC day for the last ``days`` days, the most often
    flagged works, and the review backlog."""
    days = max(1, min(days, MAX_DAYS))
    today = now().date()
    first = today - dt.timedelta(days=days - 1)
    dates = [first + dt.timedelta(days=n) for n in range(days)]
    position = {d.isoformat(): n for n, d in enumerate(dates)}
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    per_day = {d.value: [0] * days for d in Decision}
    day = func.date(CheckRow.created_at)
    with Session(engine) as session:
        for when, decision, count in session.execute(
            select(day, CheckRow.decision, func.count())
            .where(CheckRow.created_at >= since)
            .group_by(day, CheckRow.decision)
        ):
            slot = position.get(str(when)[:10])
            if slot is not None and decision in per_day:
                per_day[decision][slot] += int(count)
        flagged = func.count()
        top_works = [
            (str(work_id), int(count))
            for work_id, count in session.execute(
                select(CheckMatchRow.work_id, flagged)
                .where(CheckMatchRow.licensed.is_(False))
                .group_by(CheckMatchRow.work_id)
                .order_by(flagged.desc(), CheckMatchRow.work_id)
                .limit(top)
            )
        ]
        pending = CheckRow.review_status == "pending"
        backlog = int(session.scalar(select(func.count()).where(pending)) or 0)
        oldest = session.scalar(select(func.min(CheckRow.created_at)).where(pending))
        total = int(session.scalar(select(func.count()).select_from(CheckRow)) or 0)
    return Dashboard(
        days=tuple(d.isoformat() for d in dates),
        per_day={k: tuple(v) for k, v in per_day.items()},
        top_works=tuple(top_works),
        backlog=backlog,
        oldest_pending=iso(oldest),
        total_checks=total,
    )
