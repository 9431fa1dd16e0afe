"""End users' appeals against a held output, with the deadlines the policy sets.

A platform files an appeal for its user against one of its own checks that was held
(review or block). The owners of the works that held it are told (they see the appeal
and may respond); an operator upholds it or overturns it with a reason. An overturned
check is released and joins the false positives exactly as a rejected review does
(``review_status = "rejected"``), so threshold tuning reads one list. Every step is an
audit record written in the same transaction as the change.

Deadlines are fixed when the appeal is filed (a later policy change does not move them):
the rights holder should respond by ``respond_by`` and an operator decide by
``decide_by``. Time comes from ``clock`` so that tests and replays choose "now".

Kept beside the :class:`~screener.duties.desk.Desk` (which it uses for keys, audit and the check
visibility rule) rather than inside it: the service wires both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, ForeignKey, String, Text, and_, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session
from sqlalchemy.types import JSON

from screener.core.errors import Conflict, InputError, NotFound, is_plain_id, quote
from screener.core.policy import AppealDeadlines, Decision
from screener.core.text import LINES, check_text
from screener.store.audit import AuditLog, ensure_tables
from screener.store.catalog import Base
from screener.store.check_records import CheckMatchRow, CheckRow, iso, new_id
from screener.store.clock import now
from screener.store.keys import ApiKey, Role, require_role

if TYPE_CHECKING:
    from screener.duties.desk import Desk

APPEAL_TABLES = ("appeals",)
MAX_STATEMENT = 4000
MAX_REF = 200
MAX_PAGE = 500


class AppealStatus(StrEnum):
    OPEN = "open"
    UPHELD = "upheld"
    OVERTURNED = "overturned"


class AppealRow(Base):
    __tablename__ = "appeals"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    check_id: Mapped[str] = mapped_column(
        ForeignKey("checks.id", ondelete="CASCADE"), unique=True, index=True
    )
    platform: Mapped[str] = mapped_column(String(200), index=True)
    filed_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    statement: Mapped[str] = mapped_column(Text)
    contact_ref: Mapped[str | None] = mapped_column(String(MAX_REF), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    respond_by: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    decide_by: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    responded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The rights holders whose works held the output: the ones told, the ones who respond.
    owners: Mapped[list[str]] = mapped_column(JSON)
    works: Mapped[list[str]] = mapped_column(JSON)
    responses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _text(name: str, value: str | None, limit: int, *, required: bool = False) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InputError(f"{name} must not be empty")
        return None
    return check_text(name, value, limit, allow=LINES).strip()


def _anonymous(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k != "by"}


@dataclass(frozen=True)
class Appeal:
    """An appeal as one caller may see it (a rights holder does not see the platform,
    the user's contact or other holders' responses)."""

    id: str
    check_id: str
    platform: str
    created_at: str
    statement: str
    contact_ref: str | None
    status: str
    respond_by: str
    decide_by: str
    responded_at: str | None
    works: tuple[str, ...]
    responses: tuple[dict[str, Any], ...]
    decision: dict[str, Any] | None
    history: tuple[dict[str, Any], ...]
    response_overdue: bool
    decision_overdue: bool
    released: bool

    @property
    def overdue(self) -> bool:
        return self.response_overdue or self.decision_overdue

    def to_dict(self) -> dict[str, Any]:
        return {
            "appeal_id": self.id,
            "check_id": self.check_id,
            "platform": self.platform,
            "created_at": self.created_at,
            "statement": self.statement,
            "contact_ref": self.contact_ref,
            "status": self.status,
            "respond_by": self.respond_by,
            "decide_by": self.decide_by,
            "responded_at": self.responded_at,
            "works": list(self.works),
            "responses": list(self.responses),
            "decision": self.decision,
            "history": list(self.history),
            "response_overdue": self.response_overdue,
            "decision_overdue": self.decision_overdue,
            "overdue": self.overdue,
            "released": self.released,
        }


@dataclass(frozen=True)
class Overdue:
    respond: int
    decide: int


class Appeals:
    """File, answer, decide and list appeals, each behind its role."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        deadlines: Callable[[], AppealDeadlines],
        clock: Callable[[], dt.datetime] = now,
        withdraw: Callable[[ApiKey, str, str], list[int]] | None = None,
    ) -> None:
        """``deadlines`` returns the policy's :class:`~screener.core.policy.AppealDeadlines` in
        force (read at each filing, so a policy put into force later applies to new
        appeals); ``audit`` is the desk's :class:`~screener.store.audit.AuditLog`."""
        self.engine = engine
        self.audit = audit
        self.deadlines = deadlines
        self.clock = clock
        # Removes what a reviewer's confirmation of a check added to works (key, check id,
        # appeal id): called when the check's appeal is overturned.
        self.withdraw = withdraw
        ensure_tables(engine, APPEAL_TABLES)

    @classmethod
    def of(cls, desk: Desk, clock: Callable[[], dt.datetime] = now) -> Appeals:
        """Appeals on the desk's database and audit chain, under its policy in force."""
        return cls(
            desk.engine,
            desk.audit,
            lambda: desk.screener.policy.appeals,
            clock,
            desk.withdraw_confirmed,
        )

    # views ------------------------------------------------------------------------------

    def _view(self, row: AppealRow, key: ApiKey) -> Appeal:
        moment = self.clock()
        open_ = row.status == AppealStatus.OPEN.value
        holder = key.role == Role.RIGHTS_HOLDER
        responses = [r for r in row.responses or [] if not holder or r.get("owner") == key.owner]
        works = tuple(row.works or ())
        if holder:  # only its own works: another owner's are no business of this one
            works = tuple(w for w in works if w in self._owned(row, key.owner))
        return Appeal(
            id=row.id,
            check_id=row.check_id,
            platform="" if holder else row.platform,
            created_at=iso(row.created_at) or "",
            statement=row.statement,
            contact_ref=None if holder else row.contact_ref,
            status=row.status,
            respond_by=iso(row.respond_by) or "",
            decide_by=iso(row.decide_by) or "",
            responded_at=iso(row.responded_at),
            works=works,
            responses=tuple(responses),
            decision=dict(row.decision) if row.decision else None,
            history=tuple(
                # A rights holder sees its own steps and the others' without who took them
                # (the platform's key is the platform's business).
                h if not holder or h.get("owner") == key.owner else _anonymous(h)
                for h in row.history or []
                if not holder or h.get("owner") in (None, key.owner)
            ),
            response_overdue=open_ and row.responded_at is None and moment > _aware(row.respond_by),
            decision_overdue=open_ and moment > _aware(row.decide_by),
            released=row.status == AppealStatus.OVERTURNED.value,
        )

    @staticmethod
    def _owned(row: AppealRow, owner: str) -> set[str]:
        """The works of ``owner`` that the appealed check matched (read in the row's own
        session, so inside the transaction that changes it)."""
        session = object_session(row)
        assert session is not None  # every view is made while its row is loaded
        return set(
            session.scalars(
                select(CheckMatchRow.work_id).where(
                    CheckMatchRow.check_id == row.check_id, CheckMatchRow.owner == owner
                )
            )
        )

    def _visible(self, key: ApiKey) -> Any:
        """The condition on appeals that ``key`` may see."""
        if key.role in (Role.OPERATOR, Role.ADMIN):
            return None
        if key.role == Role.PLATFORM:
            return AppealRow.platform == key.owner
        require_role(key, Role.RIGHTS_HOLDER, Role.PLATFORM, Role.OPERATOR, Role.ADMIN)
        held_by_mine = select(CheckMatchRow.check_id).where(
            CheckMatchRow.owner == key.owner,
            CheckMatchRow.licensed.is_(False),
            CheckMatchRow.decision != Decision.ALLOW.value,
        )
        return AppealRow.check_id.in_(held_by_mine)

    def _row(self, session: Session, key: ApiKey, appeal_id: str) -> AppealRow:
        row = session.get(AppealRow, appeal_id) if is_plain_id(appeal_id, 40) else None
        condition = self._visible(key)
        if row is not None and condition is not None:
            found = session.scalar(
                select(func.count()).select_from(AppealRow).where(AppealRow.id == row.id, condition)
            )
            row = row if found else None
        if row is None:
            raise NotFound(f"no appeal {quote(appeal_id)}")
        return row

    def _open_row(self, session: Session, key: ApiKey, appeal_id: str) -> AppealRow:
        """The appeal, which must still be open to be answered or decided."""
        row = self._row(session, key, appeal_id)
        if row.status != AppealStatus.OPEN.value:
            raise Conflict(f"appeal {appeal_id} was already {row.status}")
        return row

    @contextmanager
    def _on_open(
        self, key: ApiKey, appeal_id: str
    ) -> Iterator[tuple[Session, AppealRow, dt.datetime]]:
        """One transaction on an open appeal, the audit chain locked: the session, the
        appeal's row and the moment of the step."""
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            row = self._open_row(session, key, appeal_id)
            yield session, row, self.clock()

    # duties -----------------------------------------------------------------------------

    def file(
        self, key: ApiKey, check_id: str, statement: str, contact_ref: str | None = None
    ) -> Appeal:
        """The platform that made a held check appeals it for its end user. Another
        platform's check answers as a missing one does."""
        require_role(key, Role.PLATFORM)
        text = _text("statement", statement, MAX_STATEMENT, required=True)
        contact = _text("contact_ref", contact_ref, MAX_REF)
        assert text is not None
        deadlines = self.deadlines()
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            check = session.get(CheckRow, check_id) if is_plain_id(check_id, 40) else None
            if check is None or check.platform != key.owner:
                raise NotFound(f"no check {quote(check_id)}")
            if check.decision == Decision.ALLOW.value:
                raise Conflict(f"check {check_id} was allowed: there is nothing to appeal")
            if session.scalar(select(AppealRow.id).where(AppealRow.check_id == check_id)):
                raise Conflict(f"check {check_id} has already been appealed")
            held = session.execute(
                select(CheckMatchRow.work_id, CheckMatchRow.owner)
                .where(
                    CheckMatchRow.check_id == check_id,
                    CheckMatchRow.licensed.is_(False),
                    CheckMatchRow.decision != Decision.ALLOW.value,
                )
                .order_by(CheckMatchRow.work_id)
            ).all()
            moment = self.clock()
            appeal_id = new_id("apl")
            row = AppealRow(
                id=appeal_id,
                check_id=check_id,
                platform=key.owner,
                filed_by=key.id,
                created_at=moment,
                statement=text,
                contact_ref=contact,
                status=AppealStatus.OPEN.value,
                respond_by=moment + dt.timedelta(days=deadlines.respond_days),
                decide_by=moment + dt.timedelta(days=deadlines.decide_days),
                owners=sorted({owner for _, owner in held}),
                works=[work for work, _ in held],
                responses=[],
                history=[{"at": moment.isoformat(), "by": key.id, "action": "filed"}],
            )
            session.add(row)
            self.audit.append_in(
                session,
                key.id,
                "appeal.file",
                appeal_id,
                {
                    "check_id": check_id,
                    "platform": key.owner,
                    "works": row.works,
                    "owners": row.owners,
                    "respond_by": row.respond_by.isoformat(),
                    "decide_by": row.decide_by.isoformat(),
                },
            )
            session.flush()
            return self._view(row, key)

    def respond(self, key: ApiKey, appeal_id: str, text: str) -> Appeal:
        """A rights holder whose work held the output answers the appeal (while it is
        open; an answer after ``respond_by`` is kept and marked late)."""
        require_role(key, Role.RIGHTS_HOLDER)
        body = _text("response", text, MAX_STATEMENT, required=True)
        with self._on_open(key, appeal_id) as (session, row, moment):
            late = moment > _aware(row.respond_by)
            entry = {
                "owner": key.owner,
                "by": key.id,
                "at": moment.isoformat(),
                "text": body,
                "late": late,
            }
            row.responses = [*(row.responses or []), entry]
            row.history = [
                *(row.history or []),
                {"at": entry["at"], "by": key.id, "action": "responded", "owner": key.owner},
            ]
            if row.responded_at is None:
                row.responded_at = moment
            self.audit.append_in(
                session,
                key.id,
                "appeal.respond",
                appeal_id,
                {"check_id": row.check_id, "owner": key.owner, "late": late},
            )
            session.flush()
            return self._view(row, key)

    def decide(self, key: ApiKey, appeal_id: str, outcome: str, reason: str) -> Appeal:
        """An operator upholds the hold or overturns it. Overturning releases the output
        and records the check as a false positive (as a rejected review)."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        if outcome not in (AppealStatus.UPHELD.value, AppealStatus.OVERTURNED.value):
            raise InputError("the outcome must be upheld or overturned")
        why = _text("reason", reason, MAX_STATEMENT, required=True)
        with self._on_open(key, appeal_id) as (session, row, moment):
            late = moment > _aware(row.decide_by)
            row.status = outcome
            row.decision = {"by": key.id, "at": moment.isoformat(), "reason": why, "late": late}
            row.history = [
                *(row.history or []),
                {"at": moment.isoformat(), "by": key.id, "action": outcome},
            ]
            payload: dict[str, Any] = {"check_id": row.check_id, "reason": why, "late": late}
            if outcome == AppealStatus.OVERTURNED.value:
                check = session.get(CheckRow, row.check_id)
                assert check is not None  # the appeal's foreign key
                check.review_status = "rejected"
                check.review = {
                    "by": key.id,
                    "at": moment.isoformat(),
                    "note": why,
                    "appeal_id": row.id,
                    "released": True,
                }
                payload.update(top_work_id=check.top_work_id, fused_score=check.fused_score)
            self.audit.append_in(session, key.id, f"appeal.{outcome}", appeal_id, payload)
            session.flush()
            decided = self._view(row, key)
        if outcome == AppealStatus.OVERTURNED.value and self.withdraw is not None:
            # After the decision is committed; each removal is a catalog transaction of its
            # own. A crash in between leaves the reference, still listed with its origin (the
            # review of this check) on the work's page, where an operator can remove it.
            self.withdraw(key, decided.check_id, appeal_id)
        return decided

    def get(self, key: ApiKey, appeal_id: str) -> Appeal:
        with Session(self.engine) as session:
            return self._view(self._row(session, key, appeal_id), key)

    def of_check(self, key: ApiKey, check_id: str) -> Appeal | None:
        """The appeal against a check, if ``key`` may see it."""
        with Session(self.engine) as session:
            row = session.scalar(select(AppealRow).where(AppealRow.check_id == check_id))
            if row is None:
                return None
            try:
                return self._view(self._row(session, key, row.id), key)
            except NotFound:
                return None

    def list(
        self,
        key: ApiKey,
        *,
        status: str | None = None,
        overdue: bool | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Appeal], int]:
        """Oldest deadline first: a platform's own appeals, those against a rights
        holder's works, or all for operators. ``overdue`` keeps open appeals past a
        deadline (true) or within both (false)."""
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise InputError(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}")
        query = select(AppealRow)
        condition = self._visible(key)
        if condition is not None:
            query = query.where(condition)
        if status is not None:
            if status not in {s.value for s in AppealStatus}:
                raise InputError(f"status must be one of {[s.value for s in AppealStatus]}")
            query = query.where(AppealRow.status == status)
        if overdue is not None:
            late = self._overdue_condition(self.clock())
            query = query.where(late if overdue else ~late)
        with Session(self.engine) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(AppealRow.decide_by, AppealRow.id).offset(offset).limit(limit)
            )
            return [self._view(r, key) for r in rows], total

    @staticmethod
    def _overdue_condition(moment: dt.datetime) -> Any:
        return and_(
            AppealRow.status == AppealStatus.OPEN.value,
            or_(
                AppealRow.decide_by < moment,
                and_(AppealRow.responded_at.is_(None), AppealRow.respond_by < moment),
            ),
        )

    def overdue(self) -> Overdue:
        """Open appeals past each deadline, for metrics and the dashboard (no key: the
        counts name no one)."""
        moment = self.clock()
        is_open = AppealRow.status == AppealStatus.OPEN.value
        with Session(self.engine) as session:
            respond = session.scalar(
                select(func.count())
                .select_from(AppealRow)
                .where(is_open, AppealRow.responded_at.is_(None), AppealRow.respond_by < moment)
            )
            decide = session.scalar(
                select(func.count())
                .select_from(AppealRow)
                .where(is_open, AppealRow.decide_by < moment)
            )
        return Overdue(int(respond or 0), int(decide or 0))

    def counts(self) -> dict[str, int]:
        """Appeals per status."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(AppealRow.status, func.count()).group_by(AppealRow.status)
            ).all()
        found = {s.value: 0 for s in AppealStatus}
        found.update({str(s): int(n) for s, n in rows})
        return found
