"""An append-only, hash-chained audit log of who did what (checks, works, notices, keys).

Each record's hash covers the previous record's hash and the record's own fields::

    hash = sha256(prev_hash || canonical({"seq", "at", "actor", "action", "subject", "payload"}))

where ``prev_hash`` is 64 hex characters (64 zeros before the first record), ``canonical``
is :func:`canonical_json` encoded as UTF-8 and ``payload`` is the stored JSON text itself
(so a changed byte anywhere in it changes the hash, even one that still parses).

Appends are serialised, so concurrent writers (threads, or processes sharing a database)
never fork the chain: on SQLite the writing transaction starts with ``BEGIN IMMEDIATE``
(the database's single write lock, waited for through ``busy_timeout``); on PostgreSQL it
takes a transaction-scoped advisory lock (``pg_advisory_xact_lock``); elsewhere it selects
the head row ``FOR UPDATE``. Independently of the lock, the new record's seq is the head's
seq + 1 (a primary key) and the head is moved with a compare-and-set, so two writers that
somehow both read the same head cannot both commit.

``audit_head`` holds one row (the last seq and hash), moved in the same transaction as each
append; it is what lets :meth:`AuditLog.verify` notice a truncated tail, which the chain
alone cannot show. Someone able to rewrite the log *and* the head consistently (recomputing
every hash after their change) can only be caught by an anchor kept outside the database:
publish or store :meth:`AuditLog.head` (the seq and hash) elsewhere from time to time and
pass it back to :meth:`AuditLog.verify`.

The tables are declared on the catalog's ``Base``; an :class:`AuditLog` creates them (and
the head row) on the engine it is given, so nothing depends on import order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    Integer,
    String,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Mapped, Session, mapped_column

from screener.core.errors import InputError, NotFound, ScreenerError
from screener.store.catalog import Base

GENESIS_HASH = "0" * 64
MAX_ACTOR = 200
MAX_ACTION = 64
MAX_SUBJECT = 200
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_PAGE = 10_000
_HEAD_ID = 1
# The PostgreSQL advisory lock key that serialises appends (any constant; this spells "audit").
_PG_LOCK_KEY = int.from_bytes(b"sc-audit", "big") & 0x7FFF_FFFF_FFFF_FFFF

# SQLite needs INTEGER PRIMARY KEY exactly for AUTOINCREMENT; elsewhere use 64 bits.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject_seq", "subject", "seq"),
        {"sqlite_autoincrement": True},
    )
    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    # ISO 8601 in UTC with microseconds, stored as text so the hashed bytes are the stored ones.
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(MAX_ACTOR))
    action: Mapped[str] = mapped_column(String(MAX_ACTION))
    subject: Mapped[str] = mapped_column(String(MAX_SUBJECT))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(_SEQ)
    hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Anchor:
    """A point of the chain (seq and its hash) to keep outside the database."""

    seq: int
    hash: str


@dataclass(frozen=True)
class VerifyReport:
    """The result of walking the chain.

    ``count`` is the number of records found intact and linked (all of them when ``ok``);
    ``broken_at`` is the first seq at which the log is not what the chain says (a missing
    seq for a gap or a truncated tail); ``head_seq``/``head_hash`` are the head as stored,
    to anchor elsewhere.
    """

    ok: bool
    count: int
    broken_at: int | None
    reason: str | None
    head_seq: int = 0
    head_hash: str = GENESIS_HASH


def canonical_json(obj: Any) -> str:
    """The one JSON text of a value: sorted keys, no spaces, UTF-8 characters kept."""
    return json.dumps(
        obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def chain_hash(
    prev_hash: str, seq: int, at: str, actor: str, action: str, subject: str, payload: str
) -> str:
    """The hash of one record; ``at`` and ``payload`` are the stored texts."""
    body = canonical_json(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload": payload,
        }
    )
    return hashlib.sha256(prev_hash.encode("utf-8") + body.encode("utf-8")).hexdigest()


def format_at(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise InputError("audit timestamps must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"audit {name} must be a non-empty string")
    if len(value) > limit:
        raise InputError(f"audit {name} is longer than {limit} characters")
    if "\x00" in value:
        raise InputError(f"audit {name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"audit {name} is not valid Unicode text") from exc
    return value


def _payload_text(payload: object) -> str:
    if not isinstance(payload, Mapping):
        raise InputError("audit payload must be a JSON object (a mapping)")
    try:
        text = canonical_json(dict(payload))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InputError(f"audit payload is not JSON-serialisable: {exc}") from exc
    if size > MAX_PAYLOAD_BYTES:
        raise InputError(f"audit payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    return text


_COLUMNS = (
    AuditRow.seq,
    AuditRow.at,
    AuditRow.actor,
    AuditRow.action,
    AuditRow.subject,
    AuditRow.payload,
    AuditRow.prev_hash,
    AuditRow.hash,
)


def _record(row: Any) -> AuditRecord:
    seq, at, actor, action, subject, payload, prev_hash, hash_ = row
    try:
        moment = dt.datetime.fromisoformat(at)
        data = json.loads(payload)
    except (TypeError, ValueError) as exc:
        raise ScreenerError(f"audit record {seq} is unreadable (run verify): {exc}") from exc
    if not isinstance(data, dict):
        raise ScreenerError(f"audit record {seq} has a payload that is not an object")
    return AuditRecord(int(seq), moment, actor, action, subject, data, prev_hash, hash_)


def ensure_tables(engine: Engine, names: tuple[str, ...]) -> None:
    """Create the named tables of ``Base`` if missing (tolerating a concurrent creator)."""
    tables = [Base.metadata.tables[name] for name in names]
    try:
        Base.metadata.create_all(engine, tables=tables)
    except (OperationalError, ProgrammingError):
        # Another process created one between the existence check and CREATE TABLE.
        Base.metadata.create_all(engine, tables=tables)


def lock_connection(connection: Connection) -> None:
    """Take the audit chain's write lock for the connection's current transaction.

    Call it first thing in a transaction that will append (on SQLite ``BEGIN IMMEDIATE``
    can only open a transaction). Idempotent within a transaction; released at its end.
    """
    dialect = connection.dialect.name
    if dialect == "sqlite":
        raw = connection.connection.dbapi_connection
        if not getattr(raw, "in_transaction", False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            # A transaction is already open (the sqlite3 module opens one before the first
            # write, so it normally already holds the write lock): write the head row to be
            # sure. A stale read snapshot makes this fail rather than fork the chain.
            connection.execute(
                update(AuditHeadRow).where(AuditHeadRow.id == _HEAD_ID).values(seq=AuditHeadRow.seq)
            )
    elif dialect == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
    else:
        connection.execute(
            select(AuditHeadRow.id).where(AuditHeadRow.id == _HEAD_ID).with_for_update()
        )


class AuditLog:
    """Append to, read and verify the audit chain stored through ``engine``."""

    def __init__(self, engine: Engine, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.engine = engine
        self._clock = clock or _now
        ensure_tables(engine, ("audit_log", "audit_head"))
        with Session(engine) as session, session.begin():
            self.lock(session)
            empty = session.scalar(select(AuditRow.seq).limit(1)) is None
            if empty and session.get(AuditHeadRow, _HEAD_ID) is None:
                self._tip(session)  # the genesis head; a missing head otherwise is for verify

    # writing -------------------------------------------------------------------------------

    @staticmethod
    def lock(session: Session) -> None:
        """Take the append lock in ``session``'s transaction (see :func:`lock_connection`).

        A caller that appends with :meth:`append_in` should call this before its own reads
        and writes, so that on SQLite the whole transaction is a write transaction from the
        start; :meth:`append_in` calls it again (harmlessly) in any case.
        """
        lock_connection(session.connection())

    def append(
        self, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> AuditRecord:
        """Append one record in a transaction of its own."""
        with Session(self.engine) as session, session.begin():
            self.lock(session)
            return self.append_in(session, actor, action, subject, payload)

    def append_in(
        self,
        session: Session,
        actor: str,
        action: str,
        subject: str,
        payload: Mapping[str, Any],
    ) -> AuditRecord:
        """Append one record inside the caller's transaction: it commits or rolls back with it."""
        actor = _check_text("actor", actor, MAX_ACTOR)
        action = _check_text("action", action, MAX_ACTION)
        subject = _check_text("subject", subject, MAX_SUBJECT)
        payload_text = _payload_text(payload)
        at = format_at(self._clock())
        self.lock(session)
        last_seq, prev_hash = self._tip(session)
        seq = last_seq + 1
        digest = chain_hash(prev_hash, seq, at, actor, action, subject, payload_text)
        connection = session.connection()
        connection.execute(
            insert(AuditRow).values(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                subject=subject,
                payload=payload_text,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        moved = connection.execute(
            update(AuditHeadRow)
            .where(AuditHeadRow.id == _HEAD_ID, AuditHeadRow.seq == last_seq)
            .values(seq=seq, hash=digest)
        )
        if moved.rowcount != 1:
            raise ScreenerError("the audit head moved during an append; retry")
        return AuditRecord(
            seq,
            dt.datetime.fromisoformat(at),
            actor,
            action,
            subject,
            json.loads(payload_text),
            prev_hash,
            digest,
        )

    def hook(
        self, actor: str, action: str, subject: str, payload: Mapping[str, Any]
    ) -> Callable[..., None]:
        """A catalog write hook (see ``screener.store.catalog``) that appends the record of the
        change inside the change's own transaction, with what the write reports (the work's
        owner and the references added, or the fingerprints removed)."""

        def append(session: Session, *reported: Any) -> None:
            extra: dict[str, Any] = {}
            if reported and hasattr(reported[0], "owner"):
                extra["work_owner"] = reported[0].owner
                if len(reported) > 1:
                    extra["references_added"] = list(reported[1])
                if len(reported) > 2 and reported[2]:
                    extra["references_held"] = list(reported[2])
            elif reported:
                extra["fingerprints_removed"] = reported[0]
            self.append_in(session, actor, action, subject, {**payload, **extra})

        return append

    @staticmethod
    def _tip(session: Session) -> tuple[int, str]:
        """The head (creating the genesis head on an empty log); call under the lock."""
        head = session.execute(
            select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _HEAD_ID)
        ).one_or_none()
        if head is not None:
            return int(head[0]), str(head[1])
        if session.scalar(select(AuditRow.seq).limit(1)) is not None:
            raise ScreenerError("the audit head is missing but the log is not empty: run verify")
        session.execute(insert(AuditHeadRow).values(id=_HEAD_ID, seq=0, hash=GENESIS_HASH))
        return 0, GENESIS_HASH

    # reading -------------------------------------------------------------------------------

    def head(self) -> Anchor:
        """The last seq and hash, as the head row has them: the value to anchor elsewhere."""
        with Session(self.engine) as session:
            row = session.execute(
                select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _HEAD_ID)
            ).one_or_none()
        return Anchor(0, GENESIS_HASH) if row is None else Anchor(int(row[0]), str(row[1]))

    def get(self, seq: int) -> AuditRecord:
        with Session(self.engine) as session:
            row = session.execute(select(*_COLUMNS).where(AuditRow.seq == seq)).one_or_none()
        if row is None:
            raise NotFound(f"no audit record {seq}")
        return _record(row)

    def records(self, after: int = 0, limit: int = 100) -> list[AuditRecord]:
        """Up to ``limit`` records with seq > ``after``, oldest first (page with the last seq)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be between 1 and {MAX_PAGE}")
        with Session(self.engine) as session:
            rows = session.execute(
                select(*_COLUMNS).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(limit)
            ).all()
        return [_record(row) for row in rows]

    def position(self, subject: str, action: str | None = None) -> int | None:
        """The seq of the newest record about ``subject`` (of ``action``, if given)."""
        query = select(func.max(AuditRow.seq)).where(AuditRow.subject == subject)
        if action is not None:
            query = query.where(AuditRow.action == action)
        with Session(self.engine) as session:
            found = session.scalar(query)
        return None if found is None else int(found)

    # verifying -----------------------------------------------------------------------------

    def verify(self, anchor: Anchor | None = None, *, batch: int = 1000) -> VerifyReport:
        """Walk the whole chain in seq order, ``batch`` rows at a time, in one read snapshot.

        Detects an edited row (its hash no longer matches), a deleted row (a gap in seq, or
        a prev_hash that does not link), a reordered, renumbered or inserted row (the same),
        a truncated tail or rows added behind the head's back (the head disagrees with the
        last row) and, given ``anchor``, a log rewritten consistently since the anchor was
        taken. Stops at the first problem.
        """
        if batch < 1:
            raise InputError("batch must be at least 1")
        with self.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # A deferred transaction: its snapshot is fixed by the first read below.
                connection.exec_driver_sql("BEGIN")
            else:
                connection.execution_options(isolation_level="REPEATABLE READ")
            try:
                return self._walk(connection, anchor, batch)
            finally:
                connection.rollback()

    @staticmethod
    def _walk(connection: Connection, anchor: Anchor | None, batch: int) -> VerifyReport:
        head_row = connection.execute(
            select(AuditHeadRow.seq, AuditHeadRow.hash).where(AuditHeadRow.id == _HEAD_ID)
        ).one_or_none()
        head = None if head_row is None else Anchor(int(head_row[0]), str(head_row[1]))
        shown = head or Anchor(0, GENESIS_HASH)

        def broken(count: int, at: int, reason: str) -> VerifyReport:
            return VerifyReport(False, count, at, reason, shown.seq, shown.hash)

        count = 0
        expected = 1
        prev_hash = GENESIS_HASH
        last = 0
        while True:
            rows = connection.execute(
                select(*_COLUMNS).where(AuditRow.seq > last).order_by(AuditRow.seq).limit(batch)
            ).all()
            if not rows:
                break
            for seq, at, actor, action, subject, payload, row_prev, row_hash in rows:
                if seq != expected:
                    if seq > expected:
                        return broken(count, expected, f"seq {expected} to {seq - 1} missing")
                    return broken(count, seq, f"seq {seq} out of order after {expected - 1}")
                if row_prev != prev_hash:
                    return broken(
                        count, seq, f"prev_hash of seq {seq} does not link to seq {seq - 1}"
                    )
                try:
                    digest = chain_hash(row_prev, seq, at, actor, action, subject, payload)
                except (TypeError, ValueError) as exc:
                    return broken(count, seq, f"seq {seq} is unreadable: {exc}")
                if digest != row_hash:
                    return broken(count, seq, f"hash mismatch at seq {seq}: the row was changed")
                if anchor is not None and seq == anchor.seq and row_hash != anchor.hash:
                    return broken(count, seq, f"seq {seq} does not match the external anchor")
                count += 1
                expected += 1
                prev_hash = row_hash
            last = int(rows[-1][0])

        last_seq = expected - 1
        if head is None:
            if last_seq:
                return broken(count, 1, f"the audit head is missing (log ends at seq {last_seq})")
        elif head.seq > last_seq:
            return broken(
                count, last_seq + 1, f"truncated: head is at seq {head.seq}, log ends at {last_seq}"
            )
        elif head.seq < last_seq:
            return broken(
                count,
                head.seq + 1,
                f"seq {head.seq + 1} to {last_seq} were not appended through the head",
            )
        elif head.hash != prev_hash:
            return broken(count, last_seq, f"the head hash does not match seq {last_seq}")
        if anchor is not None and anchor.seq > last_seq:
            return broken(
                count,
                last_seq + 1,
                f"truncated: the external anchor is at seq {anchor.seq}, log ends at {last_seq}",
            )
        return VerifyReport(True, count, None, None, shown.seq, shown.hash)
