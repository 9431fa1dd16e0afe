"""What every duty of the desk shares: its limits, the upload type, the text checks, and
the state (screener, engine, audit log, keys) with the rules more than one duty applies
(who may touch a work, audit hooks, where a reference came from)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from screener.core.errors import InputError, NotFound, is_plain_id, quote
from screener.core.text import LINES, check_text
from screener.matching.pipeline import Screener
from screener.store.audit import AuditLog, ensure_tables
from screener.store.catalog import ReferenceRow, RegisterHook, Work
from screener.store.check_records import CHECK_TABLES, ReferenceOriginRow
from screener.store.keys import ApiKey, KeyStore, Role, can_manage_work, can_read_work, require_role

MAX_PAGE = 500
MAX_TEXT = 2000
WORK_ROLES = (Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)


@dataclass(frozen=True)
class Upload:
    """An image as the caller sent it."""

    data: bytes
    name: str


def _text(name: str, value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    return check_text(name, value, limit, allow=LINES, blank=True)


def _terms(name: str, values: Sequence[str], most: int = 100) -> list[str]:
    """Terms stripped, blanks and repeats dropped, each checked like an alias."""
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    for value in cleaned:
        _text(name, value, 200)
    if len(cleaned) > most:
        raise InputError(f"at most {most} {name}s")
    return cleaned


def _page(offset: int, limit: int) -> None:
    if offset < 0:
        raise InputError("offset must not be negative")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}")


class DeskBase:
    """The state every duty shares (the screener, its engine, the audit log, the keys)
    and the rules more than one duty applies: who may touch which work, audit hooks."""

    def __init__(self, screener: Screener) -> None:
        self.screener = screener
        self.engine = screener.catalog.engine
        self.audit = AuditLog(self.engine)
        self.keys = KeyStore(self.engine, self.audit)
        ensure_tables(self.engine, CHECK_TABLES)

    # auth ---------------------------------------------------------------------------------

    def authenticate(self, key_string: object) -> ApiKey:
        return self.keys.authenticate(key_string)

    def _work_for(self, key: ApiKey, work_id: str, *, manage: bool = False) -> Work:
        require_role(key, Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
        found = (
            self.screener.catalog.works([work_id]).get(work_id) if is_plain_id(work_id) else None
        )
        allowed = found is not None and (
            can_manage_work(key, found.owner) if manage else can_read_work(key, found.owner)
        )
        if found is None or not allowed:
            raise NotFound(f"no work {quote(work_id)}")
        return found

    @staticmethod
    def authorise_works(key: ApiKey) -> None:
        """Registering works, adding references, filing notices: before any upload is read,
        so a key that may not do it learns nothing about its request (not even its size)."""
        require_role(key, *WORK_ROLES)

    def _audited(
        self, key: ApiKey, action: str, subject: str, payload: dict[str, Any]
    ) -> Callable[..., None]:
        return self.audit.hook(key.id, action, subject, payload)


def _record_origins(
    session: Session, work_id: str, added: Sequence[int], kind: str, source: str
) -> None:
    """Note, in the registering transaction, where the references just added came from."""
    for reference_id in added:
        reference = session.get(ReferenceRow, reference_id)
        if reference is not None:
            session.merge(
                ReferenceOriginRow(
                    reference_id=reference_id,
                    sha256=reference.sha256,
                    work_id=work_id,
                    kind=kind,
                    source=source,
                )
            )


def _with_origins(hook: Callable[..., None], kind: str, source: str) -> RegisterHook:
    def both(session: Session, work: Work, added: list[int], held: list[int]) -> None:
        hook(session, work, added, held)
        _record_origins(session, work.id, added, kind, source)

    return both
